"""Detection stage 3: INT8 by teacher-guided QAT (default) or PTQ, with the same PT2E recipe as classification.

The prepared graph returns what the exported model returns (sigmoid scores and box distances), so during
QAT the student's logits are recovered from its fake-quantized scores; the teacher keeps guiding through
score KD and box imitation. Feature imitation is off in QAT: the prepared graph exposes only its outputs.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from safetensors.torch import save_file

from edgekit.config import stage_params
from edgekit.detect.evaluate import load_detector, map_from_raw, raw_outputs, save_eval_outputs
from edgekit.detect.stage_context import DetectContext
from edgekit.detect.stage_distill import kd_loss
from edgekit.detect.train import train_detector
from edgekit.models.checkpoint import WEIGHTS
from edgekit.pipeline.atomic import write_json_atomic
from edgekit.pipeline.runner import read_stage, run_stage, stage_dir
from edgekit.quantize import pt2e
from edgekit.quantize.calibration import calibrate
from edgekit.quantize.converted_cache import remember

VERSION = "4"  # 2: saves the INT8 graph's eval outputs. 3: PTQ calibrates on a random sample. 4: conv/linear inputs share their producer's scale
SCORE_EPS = 1e-4


def prepared_outputs(model: torch.nn.Module, x: torch.Tensor) -> dict[str, Any]:
    scores, boxes = model(x)  # channel-major, as exported
    logits = torch.logit(scores.transpose(1, 2).clamp(SCORE_EPS, 1 - SCORE_EPS))
    return {"logits": logits, "boxes": boxes.transpose(1, 2), "features": None}


def run(ctx: DetectContext) -> dict[str, Any]:
    s = ctx.settings
    data, identity = ctx.data()
    read_stage(ctx.out, "distill")
    distill_dir, teacher_dir = stage_dir(ctx.out, "distill"), stage_dir(ctx.out, "teacher")

    def body(folder: Path) -> dict[str, Any]:
        torch.manual_seed(s.seed)
        student = load_detector(distill_dir)
        x, split = ctx.images("train"), data.splits["train"]
        prepared = pt2e.prepare(student, x[:2], s.quant_method)
        history: list[dict[str, float]] = []
        calibration: dict[str, Any] | None = None
        if s.quant_method == "qat":
            teacher = load_detector(teacher_dir) if s.alpha > 0 else None
            loss = kd_loss(s.alpha, s.temperature)
            loss.weights["feature"] = 0.0
            pt2e.to_train(prepared)
            history = train_detector(prepared, x, split.boxes, split.labels, num_classes=len(data.classes),
                                     loss_fn=loss, epochs=s.qat_epochs, lr=s.qat_lr, batch_size=s.batch_size,
                                     seed=s.seed + 1, stage="quantize (QAT)", teacher=teacher,
                                     forward=prepared_outputs)
            pt2e.to_eval(prepared)
        else:
            calibration = calibrate(prepared, x, images=s.calibration_batches * s.batch_size,
                                    batch_size=s.batch_size, seed=s.seed)
        save_file({k: v.detach().contiguous().clone() for k, v in prepared.state_dict().items()}, str(folder / WEIGHTS))
        write_json_atomic(folder / "model.json", {"method": s.quant_method})
        int8 = pt2e.convert(prepared)
        remember(folder, int8)
        raw = raw_outputs(int8, ctx.images(data.eval_split))
        save_eval_outputs(folder, *raw)
        scores = map_from_raw(data, data.eval_split, *raw)
        ctx.console.print(f"quantize: {s.quant_method.upper()} INT8 (PyTorch) {data.eval_split} mAP50 {scores['map50']:.4f}, "
                          f"mAP50-95 {scores['map50_95']:.4f}")
        return {**scores, "split": data.eval_split, "method": s.quant_method, "history": history,
                "calibration": calibration, "teacher_guided": s.quant_method == "qat" and s.alpha > 0}

    return run_stage("quantize", VERSION, stage_params(s, "quantize"),
                     {"data": identity, "student": distill_dir, "teacher": teacher_dir}, ctx.out, body,
                     force=ctx.force, console=ctx.console)
