"""Stage 2: a MobileNet student learns from the teacher by the chosen method (distill/methods.py).

``progressive`` first trains teacher assistants, each from the one before; ``self`` trains further
generations of the student. Each of these models is one training loop with its own checkpoint, so a
kill in the middle resumes in the loop it hit. The model the student finally learned from, when it is
not the teacher stage's, is kept as ``guide/`` for the QAT stage to learn from as well.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from edgekit.config import stage_params
from edgekit.distill.assistants import assistant_widths
from edgekit.distill.cache_policy import soft_label_cache
from edgekit.distill.method_spec import parse_method
from edgekit.distill.methods import build_loss
from edgekit.distill.train_loop import accuracy, predict, train
from edgekit.models.builders import build_model, student_spec
from edgekit.models.checkpoint import count_parameters, save_weights
from edgekit.models.predictions import save_logits
from edgekit.models.stage_models import load_teacher
from edgekit.pipeline.distributed import training_device
from edgekit.pipeline.runner import read_stage, run_stage, stage_dir
from edgekit.stages.common import StageContext

VERSION = "4"  # 2: methods; augmentation drawn per epoch and image. 3: DKD NCKD weight 1 (a stage trained with 8 is stale). 4: NCKD weight 0.5
GUIDE = "guide"


def training_chain(ctx: StageContext, teacher_params: int) -> list[tuple[str, dict[str, Any]]]:
    """(loop label, model spec) of every model the stage trains, in order; the student last."""
    s = ctx.settings
    classes = len(ctx.data.classes)
    spec = student_spec(s.student, s.width, classes)
    strategy = parse_method(s.method).strategy
    chain: list[tuple[str, dict[str, Any]]] = []
    if strategy == "progressive":
        widths = assistant_widths(teacher_params, s.student, s.width, classes, s.assistants)
        chain = [(f"distill (assistant {i + 1} of {len(widths)}, x{w})", student_spec(s.student, w, classes))
                 for i, w in enumerate(widths)]
    elif strategy == "self":
        chain = [(f"distill (generation {g})", spec) for g in range(2, s.generations)]
    return [*chain, ("distill", spec)]


def run(ctx: StageContext) -> dict[str, Any]:
    s = ctx.settings
    teacher_record = read_stage(ctx.out, "teacher")
    teacher_dir = stage_dir(ctx.out, "teacher")
    inputs = {"data": ctx.data.identity, "teacher": teacher_dir}

    def body(folder: Path) -> dict[str, Any]:
        method = parse_method(s.method)
        teacher = load_teacher(teacher_dir) if s.alpha > 0 else None
        # the teacher stage's model is the student's architecture under self-distillation
        teacher_layers = list(s.student_layers) if method.strategy == "self" else list(s.teacher_layers)
        x, y = ctx.split("train")
        x_eval, y_eval = ctx.eval_split()
        chain = training_chain(ctx, teacher_record["result"]["params"])
        steps: list[dict[str, Any]] = []
        guide_spec = None
        for k, (label, spec) in enumerate(chain):
            last = k == len(chain) - 1
            torch.manual_seed(s.seed if last else s.seed + 1 + k)
            model = build_model(spec)
            model.train()
            loss = build_loss(method, model, teacher, s.size, temperature=s.temperature, alpha=s.alpha,
                              student_layers=s.student_layers, teacher_layers=teacher_layers)
            timings: list[float] = []
            cache = {"read": 0, "computed": 0}
            history = train(model, x, y, loss_fn=loss, teacher=teacher, epochs=s.distill_epochs, lr=s.distill_lr,
                            batch_size=s.batch_size, hflip=s.hflip, seed=s.seed, stage=label,
                            soft_labels=soft_label_cache(s, ctx.out, teacher, x, s.seed), timings=timings,
                            cache_stats=cache, device=training_device(s.train_device))
            model.eval()
            if last:
                break
            acc = accuracy(predict(model, x_eval), y_eval)
            ctx.console.print(f"{label}: {count_parameters(model):,} parameters, {ctx.data.eval_split} accuracy {acc:.4f}")
            steps.append({"label": label, "width": spec["width"], "params": count_parameters(model), "accuracy": acc,
                          "history": history, "epoch_seconds": timings, "soft_label_epochs": cache})
            for p in model.parameters():
                p.requires_grad_(False)
            teacher, guide_spec, teacher_layers = model, spec, list(s.student_layers)
        save_weights(model, folder, chain[-1][1])
        if guide_spec is not None:
            (folder / GUIDE).mkdir()
            save_weights(teacher, folder / GUIDE, guide_spec)
        logits = predict(model, x_eval)
        save_logits(folder, logits)
        acc = accuracy(logits, y_eval)
        params = count_parameters(model)
        ratio = teacher_record["result"]["params"] / params
        ctx.console.print(f"distill: {s.student} x{s.width} by {s.method}, {params:,} parameters "
                          f"(teacher/student {ratio:.1f}x), {ctx.data.eval_split} accuracy {acc:.4f}")
        return {"accuracy": acc, "split": ctx.data.eval_split, "params": params, "arch": s.student,
                "width": s.width, "teacher_to_student_params": round(ratio, 2), "temperature": s.temperature,
                "alpha": s.alpha, "method": s.method, "loss_terms": [n for n, _ in method.terms],
                "intermediate": steps, "history": history, "epoch_seconds": timings, "soft_label_epochs": cache}

    return run_stage("distill", VERSION, stage_params(s, "distill"), inputs, ctx.out, body,
                     force=ctx.force, console=ctx.console)


def guide_teacher(distill_dir: Path, teacher_dir: Path) -> torch.nn.Module:
    """The model the student last learned from: an assistant or an earlier generation, else the teacher."""
    return load_teacher(distill_dir / GUIDE) if (Path(distill_dir) / GUIDE).is_dir() else load_teacher(teacher_dir)
