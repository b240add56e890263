"""Stage 1: train a teacher on the data, or load the user's, and measure its test accuracy."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F

from edgekit.config import method_strategy, stage_params
from edgekit.distill.train_loop import accuracy, predict, train
from edgekit.models.builders import build_model, student_spec
from edgekit.models.checkpoint import count_parameters, save_weights
from edgekit.models.onnx_teacher import copy_onnx_model
from edgekit.models.stage_models import ENSEMBLE_FILE, EXPORTED_TEACHER, ONNX_TEACHER, load_teacher, member_dir
from edgekit.models.user_weights import check_teacher_file, check_teacher_outputs, load_user_teacher
from edgekit.pipeline.atomic import write_json_atomic
from edgekit.pipeline.distributed import training_device
from edgekit.pipeline.runner import run_stage
from edgekit.stages.common import StageContext

VERSION = "2"  # 2: augmentation drawn per epoch and image (train_loop.epoch_plan); ensembles; self


def _supervised(student_logits: torch.Tensor, _teacher: torch.Tensor | None, y: torch.Tensor):
    loss = F.cross_entropy(student_logits, y)
    return loss, {"ce": float(loss.detach())}


def _load_user_teacher(ctx: StageContext, path: Path, folder: Path) -> tuple[torch.nn.Module, str]:
    s = ctx.settings
    model, spec = load_user_teacher(path, s.teacher_arch, len(ctx.data.classes))
    if spec is None and path.suffix == ".onnx":
        copy_onnx_model(path, folder / ONNX_TEACHER)
        return model, f"ONNX model {path.name} (onnxruntime)"
    if spec is None:
        shutil.copyfile(path, folder / EXPORTED_TEACHER)
        return model, f"exported program {path.name}"
    save_weights(model, folder, spec)
    return model, f"{s.teacher_arch} from {path.name}"


def _train_teacher(ctx: StageContext, folder: Path, seed: int, label: str) -> tuple[torch.nn.Module, str, list]:
    """A teacher from the labels: the torchvision teacher_arch, or for --method self the student itself
    (its first generation)."""
    s = ctx.settings
    torch.manual_seed(seed)
    classes = len(ctx.data.classes)
    self_distill = method_strategy(s.method) == "self"
    spec = student_spec(s.student, s.width, classes) if self_distill else {"arch": s.teacher_arch, "num_classes": classes}
    model = build_model(spec)
    x, y = ctx.split("train")
    model.train()
    history = train(model, x, y, loss_fn=_supervised, epochs=s.teacher_epochs, lr=s.teacher_lr,
                    batch_size=s.batch_size, hflip=s.hflip, seed=seed, stage=label,
                    device=training_device(s.train_device))
    model.eval()
    save_weights(model, folder, spec)
    source = f"{s.student} x{s.width}, generation 1 (self-distillation)" if self_distill else f"trained {s.teacher_arch}"
    return model, source, history


def run(ctx: StageContext) -> dict[str, Any]:
    s = ctx.settings
    files = [Path(f) for f in ([s.teacher] if s.teacher else []) + list(s.extra_teachers)]
    inputs: dict[str, Any] = {"data": ctx.data.identity}
    for i, path in enumerate(files):
        check_teacher_file(path)
        inputs["teacher_file" if i == 0 else f"teacher_file_{i + 1}"] = path
    ensemble = method_strategy(s.method) == "ensemble"
    count = len(files) or (s.ensemble_size if ensemble else 1)

    def body(folder: Path) -> dict[str, Any]:
        x_eval, y_eval = ctx.eval_split()
        members, histories = [], []
        for i in range(count):
            member_folder = member_dir(folder, i)
            member_folder.mkdir(parents=True, exist_ok=True)
            if files:
                model, source = _load_user_teacher(ctx, files[i], member_folder)
                history: list = []
            else:
                label = "teacher" if count == 1 else f"teacher ({i + 1} of {count})"
                model, source, history = _train_teacher(ctx, member_folder, s.seed + i, label)
            check_teacher_outputs(model, x_eval, len(ctx.data.classes), str(files[i]) if files else source)
            acc = accuracy(predict(model, x_eval), y_eval)
            members.append({"source": source, "accuracy": acc, "params": count_parameters(model), "model": model})
            histories.append(history)
        if count == 1:
            member = members[0]
            ctx.console.print(f"teacher: {member['source']}, {ctx.data.eval_split} accuracy {member['accuracy']:.4f}")
            return {"accuracy": member["accuracy"], "split": ctx.data.eval_split, "params": member["params"],
                    "arch": s.student if method_strategy(s.method) == "self" else s.teacher_arch,
                    "source": member["source"], "history": histories[0]}
        write_json_atomic(folder / ENSEMBLE_FILE, {"members": count, "weights": s.teacher_weights or [1.0] * count})
        acc = accuracy(predict(load_teacher(folder), x_eval), y_eval)
        for i, m in enumerate(members):
            ctx.console.print(f"teacher {i + 1} of {count}: {m['source']}, {ctx.data.eval_split} accuracy {m['accuracy']:.4f}")
        ctx.console.print(f"teacher: ensemble of {count}, {ctx.data.eval_split} accuracy {acc:.4f}")
        return {"accuracy": acc, "split": ctx.data.eval_split, "params": sum(m["params"] for m in members),
                "arch": f"ensemble of {count} {s.teacher_arch}" if not files else f"ensemble of {count}",
                "source": f"ensemble of {count}: " + "; ".join(m["source"] for m in members),
                "members": [{k: v for k, v in m.items() if k != "model"} for m in members], "history": histories[0]}

    return run_stage("teacher", VERSION, stage_params(s, "teacher"), inputs, ctx.out, body,
                     force=ctx.force, console=ctx.console)
