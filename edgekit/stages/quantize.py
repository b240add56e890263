"""Stage 3: INT8 by teacher-guided quantization-aware training (default) or post-training calibration.

The same PT2E recipe for every task (quantize/pt2e.py); the task supplies the QAT loss and training step.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from safetensors.torch import save_file

from edgekit.models.checkpoint import WEIGHTS
from edgekit.models.predictions import save_outputs
from edgekit.models.stage_models import guide_folder
from edgekit.pipeline.atomic import write_json_atomic
from edgekit.pipeline.runner import read_stage, run_stage, stage_dir
from edgekit.quantize import pt2e
from edgekit.quantize.calibration import calibrate
from edgekit.quantize.converted_cache import remember
from edgekit.stages.context import StageContext

VERSION = "6"  # 2: augmentation drawn per epoch and image; soft-label cache; guide teacher. 3: PTQ calibrates on a random sample. 4: conv/linear inputs share their producer's scale (one_scale_per_tensor.py). 5: one chain for every task. 6: ReLU6 observed after the clamp (fused_clamp.py); weight_range; QAT without dropout


def run(ctx: StageContext) -> dict[str, Any]:
    ctx = ctx.for_stage("quantize")
    s, task = ctx.settings, ctx.task
    read_stage(ctx.out, "distill")
    distill_dir, teacher_dir = stage_dir(ctx.out, "distill"), stage_dir(ctx.out, "teacher")
    inputs = {"data": ctx.data.identity, "student": distill_dir, "teacher": teacher_dir}

    def body(folder: Path) -> dict[str, Any]:
        data = ctx.data
        torch.manual_seed(s.seed)
        student = task.load_student(distill_dir)
        x = ctx.images("train")
        prepared = pt2e.prepare(student, x[:2], s.quant_method, s.weight_range)
        history: list[dict[str, float]] = []
        calibration: dict[str, Any] | None = None
        if s.quant_method == "qat":
            teacher = task.load_teacher(guide_folder(ctx.out)) if s.alpha > 0 else None
            pt2e.to_train(prepared)
            history = task.train_qat(ctx, prepared, teacher)
            pt2e.to_eval(prepared)
            images = len(x) * s.qat_epochs
        else:
            sample = s.calibration_images or s.calibration_batches * s.batch_size
            calibration = calibrate(prepared, x, images=sample,
                                    batch_size=s.batch_size, seed=s.seed, labels=task.calibration_labels(ctx))
            images = calibration["images"]
        save_file({k: v.detach().contiguous().clone() for k, v in prepared.state_dict().items()},
                  str(folder / WEIGHTS))
        write_json_atomic(folder / "model.json", {"method": s.quant_method, "weight_range": s.weight_range})
        int8 = pt2e.convert(prepared)
        remember(folder, int8)
        outputs = task.outputs(int8, ctx.eval_images())
        save_outputs(folder, outputs)
        scores = task.score(data, data.eval_split, outputs)
        ctx.console.print(f"quantize: {s.quant_method.upper()} INT8 (PyTorch) {data.eval_split} {task.format_scores(scores)}")
        return {**scores, "split": data.eval_split, "method": s.quant_method, "weight_range": s.weight_range,
                "images_seen": images,
                "teacher_guided": s.quant_method == "qat" and s.alpha > 0, "calibration": calibration,
                "loss": task.qat_loss(s) if s.quant_method == "qat" else None,
                "history": history}

    return run_stage("quantize", VERSION + ctx.task.training_version, s.fingerprint(), inputs, ctx.out, body,
                     force=ctx.force, console=ctx.console)
