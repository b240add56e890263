"""Detection stage 1: train the teacher, a wider and deeper TinyDetector, and measure its mAP."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from edgekit.config import stage_params
from edgekit.detect.evaluate import describe, map_of, save_detector, spec_summary
from edgekit.detect.losses import DetectionKD
from edgekit.detect.stage_context import DetectContext
from edgekit.detect.tiny_detector import DetectorSpec, TinyDetector
from edgekit.detect.user_teacher import TEACHER, load_user_detector
from edgekit.detect.train import train_detector
from edgekit.pipeline.runner import run_stage

VERSION = "3"  # 2: a user's teacher file; 3: torchvision FCOS teachers


def run(ctx: DetectContext) -> dict[str, Any]:
    s = ctx.settings
    data, identity = ctx.data()

    def body(folder: Path) -> dict[str, Any]:
        if s.teacher is not None:
            model = load_user_detector(Path(s.teacher), len(data.classes), s.teacher_arch)
            save_detector(model, folder)
            scores = map_of(model, data, ctx.images(data.eval_split), data.eval_split)
            ctx.console.print(f"teacher: {s.teacher} ({describe(model)}), {data.eval_split} mAP50 "
                              f"{scores['map50']:.4f}, mAP50-95 {scores['map50_95']:.4f}")
            return {**spec_summary(model), **scores, "split": data.eval_split, "arch": describe(model),
                    "source": f"file {s.teacher}", "history": []}
        torch.manual_seed(s.seed)
        model = TinyDetector(DetectorSpec(len(data.classes), **TEACHER))
        x = ctx.images("train")
        split = data.splits["train"]
        model.train()
        history = train_detector(model, x, split.boxes, split.labels, num_classes=len(data.classes),
                                 loss_fn=DetectionKD(TEACHER["neck"], TEACHER["neck"]), epochs=s.teacher_epochs,
                                 lr=s.teacher_lr, batch_size=s.batch_size, seed=s.seed, stage="teacher")
        model.eval()
        save_detector(model, folder)
        scores = map_of(model, data, ctx.images(data.eval_split), data.eval_split)
        ctx.console.print(f"teacher: TinyDetector x{TEACHER['width']}, {data.eval_split} mAP50 {scores['map50']:.4f}, "
                          f"mAP50-95 {scores['map50_95']:.4f}")
        return {**spec_summary(model), **scores, "split": data.eval_split, "arch": describe(model), "source": "trained",
                "history": history}

    inputs = {"data": identity, **({"teacher_file": Path(s.teacher)} if s.teacher else {})}
    return run_stage("teacher", VERSION, stage_params(s, "teacher"), inputs, ctx.out, body,
                     force=ctx.force, console=ctx.console)
