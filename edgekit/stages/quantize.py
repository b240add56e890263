"""Stage 3: INT8 by teacher-guided quantization-aware training (default) or post-training calibration."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from safetensors.torch import save_file

from edgekit.config import stage_params
from edgekit.distill.cache_policy import soft_label_cache
from edgekit.distill.losses import KDLoss
from edgekit.distill.train_loop import accuracy, predict, train
from edgekit.models.checkpoint import WEIGHTS
from edgekit.models.predictions import save_logits
from edgekit.models.stage_models import load_student
from edgekit.pipeline.atomic import write_json_atomic
from edgekit.pipeline.runner import read_stage, run_stage, stage_dir
from edgekit.quantize import pt2e
from edgekit.quantize.calibration import calibrate
from edgekit.quantize.converted_cache import remember
from edgekit.stages.common import StageContext
from edgekit.stages.distill import guide_teacher

VERSION = "4"  # 2: augmentation drawn per epoch and image; soft-label cache; guide teacher. 3: PTQ calibrates on a random sample. 4: conv/linear inputs share their producer's scale (one_scale_per_tensor.py)


def run(ctx: StageContext) -> dict[str, Any]:
    s = ctx.settings
    read_stage(ctx.out, "distill")
    distill_dir, teacher_dir = stage_dir(ctx.out, "distill"), stage_dir(ctx.out, "teacher")
    inputs = {"data": ctx.data.identity, "student": distill_dir, "teacher": teacher_dir}

    def body(folder: Path) -> dict[str, Any]:
        torch.manual_seed(s.seed)
        student = load_student(distill_dir)
        x, y = ctx.split("train")
        example = x[:2]
        prepared = pt2e.prepare(student, example, s.quant_method)
        history: list[dict[str, float]] = []
        calibration: dict[str, Any] | None = None
        if s.quant_method == "qat":
            teacher = guide_teacher(distill_dir, teacher_dir) if s.alpha > 0 else None
            pt2e.to_train(prepared)
            # Augmented views of the distill stage's seed: its first epochs' soft labels come from the cache.
            # On the CPU whatever train_device says: PT2E QAT graphs have not been run on a GPU here.
            history = train(prepared, x, y, loss_fn=KDLoss(s.temperature, s.alpha), teacher=teacher,
                            epochs=s.qat_epochs, lr=s.qat_lr, batch_size=s.batch_size, hflip=s.hflip, seed=s.seed + 1,
                            augment_seed=s.seed, stage="quantize (QAT)",
                            soft_labels=soft_label_cache(s, ctx.out, teacher, x, s.seed))
            pt2e.to_eval(prepared)
            images = len(y) * s.qat_epochs
        else:
            calibration = calibrate(prepared, x, images=s.calibration_batches * s.batch_size,
                                    batch_size=s.batch_size, seed=s.seed, labels=y)
            images = calibration["images"]
        save_file({k: v.detach().contiguous().clone() for k, v in prepared.state_dict().items()},
                  str(folder / WEIGHTS))
        write_json_atomic(folder / "model.json", {"method": s.quant_method})
        x_eval, y_eval = ctx.eval_split()
        int8 = pt2e.convert(prepared)
        remember(folder, int8)
        logits = predict(int8, x_eval)
        save_logits(folder, logits)
        acc = accuracy(logits, y_eval)
        ctx.console.print(f"quantize: {s.quant_method.upper()} INT8 (PyTorch) {ctx.data.eval_split} accuracy {acc:.4f}")
        return {"accuracy": acc, "split": ctx.data.eval_split, "method": s.quant_method,
                "images_seen": images, "teacher_guided": s.quant_method == "qat" and s.alpha > 0,
                "calibration": calibration, "history": history}

    return run_stage("quantize", VERSION, stage_params(s, "quantize"), inputs, ctx.out, body,
                     force=ctx.force, console=ctx.console)
