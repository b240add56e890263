"""Stage 1: train a teacher on the data, or load the user's, and measure its test accuracy."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F

from edgekit.config import stage_params
from edgekit.distill.train_loop import accuracy, predict, train
from edgekit.models.builders import build_model
from edgekit.models.checkpoint import count_parameters, save_weights
from edgekit.models.stage_models import EXPORTED_TEACHER, ONNX_TEACHER
from edgekit.models.user_weights import check_teacher_file, check_teacher_outputs, load_user_teacher
from edgekit.pipeline.runner import run_stage
from edgekit.stages.common import StageContext

VERSION = "1"


def _supervised(student_logits: torch.Tensor, _teacher: torch.Tensor | None, y: torch.Tensor):
    loss = F.cross_entropy(student_logits, y)
    return loss, {"ce": float(loss.detach())}


def _load_user_teacher(ctx: StageContext, folder: Path) -> tuple[torch.nn.Module, str]:
    s = ctx.settings
    path = Path(s.teacher)
    model, spec = load_user_teacher(path, s.teacher_arch, len(ctx.data.classes))
    if spec is None and path.suffix == ".onnx":
        shutil.copyfile(path, folder / ONNX_TEACHER)
        return model, f"ONNX model {path.name} (onnxruntime)"
    if spec is None:
        shutil.copyfile(path, folder / EXPORTED_TEACHER)
        return model, f"exported program {path.name}"
    save_weights(model, folder, spec)
    return model, f"{s.teacher_arch} from {path.name}"


def run(ctx: StageContext) -> dict[str, Any]:
    s = ctx.settings
    inputs: dict[str, Any] = {"data": ctx.data.identity}
    if s.teacher is not None:
        check_teacher_file(Path(s.teacher))
        inputs["teacher_file"] = Path(s.teacher)

    def body(folder: Path) -> dict[str, Any]:
        x_eval, y_eval = ctx.eval_split()
        history: list[dict[str, float]] = []
        if s.teacher is None:
            torch.manual_seed(s.seed)
            spec = {"arch": s.teacher_arch, "num_classes": len(ctx.data.classes)}
            model = build_model(spec)
            x, y = ctx.split("train")
            model.train()
            history = train(model, x, y, loss_fn=_supervised, epochs=s.teacher_epochs, lr=s.teacher_lr,
                            batch_size=s.batch_size, hflip=s.hflip, seed=s.seed, stage="teacher")
            model.eval()
            save_weights(model, folder, spec)
            source = f"trained {s.teacher_arch}"
        else:
            model, source = _load_user_teacher(ctx, folder)
        check_teacher_outputs(model, x_eval, len(ctx.data.classes), s.teacher or source)
        acc = accuracy(predict(model, x_eval), y_eval)
        ctx.console.print(f"teacher: {source}, {ctx.data.eval_split} accuracy {acc:.4f}")
        return {"accuracy": acc, "split": ctx.data.eval_split, "params": count_parameters(model),
                "arch": s.teacher_arch, "source": source, "history": history}

    return run_stage("teacher", VERSION, stage_params(s, "teacher"), inputs, ctx.out, body,
                     force=ctx.force, console=ctx.console)
