"""Detection stage 2: the TinyDetector student learns from the teacher (score KD, box and feature imitation).

``alpha`` weighs the distillation terms and ``1 - alpha`` the ground-truth loss; alpha 0 trains from scratch.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from edgekit.config import stage_params
from edgekit.detect.evaluate import load_detector, map_from_raw, raw_outputs, save_detector, save_eval_outputs, spec_summary
from edgekit.detect.losses import DetectionKD
from edgekit.detect.stage_context import DetectContext
from edgekit.detect.user_teacher import TEACHER
from edgekit.detect.tiny_detector import DetectorSpec, TinyDetector
from edgekit.detect.train import train_detector
from edgekit.pipeline.runner import read_stage, run_stage, stage_dir

VERSION = "1"
STUDENT_NECK = 48


def kd_loss(alpha: float, temperature: float, teacher_neck: int = TEACHER["neck"]) -> DetectionKD:
    return DetectionKD(STUDENT_NECK, teacher_neck, temperature=temperature, gt_weight=1.0 - alpha,
                       weights={"score_kd": alpha, "box_imitation": alpha, "feature": alpha})


def run(ctx: DetectContext) -> dict[str, Any]:
    s = ctx.settings
    data, identity = ctx.data()
    teacher_record = read_stage(ctx.out, "teacher")
    teacher_dir = stage_dir(ctx.out, "teacher")

    def body(folder: Path) -> dict[str, Any]:
        teacher = load_detector(teacher_dir) if s.alpha > 0 else None
        torch.manual_seed(s.seed)
        model = TinyDetector(DetectorSpec(len(data.classes), width=s.width, neck=STUDENT_NECK))
        loss = kd_loss(s.alpha, s.temperature, teacher.spec.neck if teacher is not None else TEACHER["neck"])
        x, split = ctx.images("train"), data.splits["train"]
        model.train()
        history = train_detector(model, x, split.boxes, split.labels, num_classes=len(data.classes), loss_fn=loss,
                                 epochs=s.distill_epochs, lr=s.distill_lr, batch_size=s.batch_size, seed=s.seed,
                                 stage="distill", teacher=teacher, extra_params=list(loss.parameters()))
        model.eval()
        save_detector(model, folder)
        raw = raw_outputs(model, ctx.images(data.eval_split))
        save_eval_outputs(folder, *raw)
        scores = map_from_raw(data, data.eval_split, *raw)
        summary = spec_summary(model)
        ratio = teacher_record["result"]["params"] / summary["params"]
        ctx.console.print(f"distill: TinyDetector x{s.width}, {summary['params']:,} parameters (teacher/student "
                          f"{ratio:.1f}x), {data.eval_split} mAP50 {scores['map50']:.4f}, mAP50-95 {scores['map50_95']:.4f}")
        return {**scores, "split": data.eval_split, "arch": "tiny_detector", **summary,
                "teacher_to_student_params": round(ratio, 2), "temperature": s.temperature, "alpha": s.alpha,
                "history": history}

    return run_stage("distill", VERSION, stage_params(s, "distill"), {"data": identity, "teacher": teacher_dir},
                     ctx.out, body, force=ctx.force, console=ctx.console)
