"""Stage 2: a MobileNet student learns from the teacher with Hinton's loss (see distill/losses.py)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from edgekit.config import stage_params
from edgekit.distill.losses import KDLoss
from edgekit.distill.train_loop import accuracy, predict, train
from edgekit.models.builders import build_model, student_spec
from edgekit.models.checkpoint import count_parameters, save_weights
from edgekit.models.predictions import save_logits
from edgekit.models.stage_models import load_teacher
from edgekit.pipeline.runner import read_stage, run_stage, stage_dir
from edgekit.stages.common import StageContext

VERSION = "1"


def run(ctx: StageContext) -> dict[str, Any]:
    s = ctx.settings
    teacher_record = read_stage(ctx.out, "teacher")
    teacher_dir = stage_dir(ctx.out, "teacher")
    inputs = {"data": ctx.data.identity, "teacher": teacher_dir}

    def body(folder: Path) -> dict[str, Any]:
        teacher = load_teacher(teacher_dir) if s.alpha > 0 else None
        spec = student_spec(s.student, s.width, len(ctx.data.classes))
        torch.manual_seed(s.seed)
        model = build_model(spec)
        x, y = ctx.split("train")
        model.train()
        history = train(model, x, y, loss_fn=KDLoss(s.temperature, s.alpha), teacher=teacher,
                        epochs=s.distill_epochs, lr=s.distill_lr, batch_size=s.batch_size, hflip=s.hflip, seed=s.seed,
                        stage="distill")
        model.eval()
        save_weights(model, folder, spec)
        x_eval, y_eval = ctx.eval_split()
        logits = predict(model, x_eval)
        save_logits(folder, logits)
        acc = accuracy(logits, y_eval)
        params = count_parameters(model)
        ratio = teacher_record["result"]["params"] / params
        ctx.console.print(f"distill: {s.student} x{s.width}, {params:,} parameters "
                          f"(teacher/student {ratio:.1f}x), {ctx.data.eval_split} accuracy {acc:.4f}")
        return {"accuracy": acc, "split": ctx.data.eval_split, "params": params, "arch": s.student,
                "width": s.width, "teacher_to_student_params": round(ratio, 2), "temperature": s.temperature,
                "alpha": s.alpha, "history": history}

    return run_stage("distill", VERSION, stage_params(s, "distill"), inputs, ctx.out, body,
                     force=ctx.force, console=ctx.console)
