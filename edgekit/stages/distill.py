"""Stage 2: the student learns from the teacher by the chosen method (distill/methods.py for classification).

The task names the models to train in order (``Task.student_chain``): ``progressive`` first trains teacher
assistants, each from the one before; ``self`` trains further generations of the student. Each is one
training loop with its own checkpoint, so a kill in the middle resumes in the loop it hit. The model the
student finally learned from, when it is not the teacher stage's, is kept as ``guide/`` for the QAT stage
to learn from as well.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from edgekit.models.predictions import save_outputs
from edgekit.models.stage_models import GUIDE
from edgekit.pipeline.runner import read_stage, run_stage, stage_dir
from edgekit.stages.context import StageContext

VERSION = "5"  # 2: methods; augmentation drawn per epoch and image. 3: DKD NCKD weight 1 (a stage trained with 8 is stale). 4: NCKD weight 0.5. 5: one chain for every task


def run(ctx: StageContext) -> dict[str, Any]:
    ctx = ctx.for_stage("distill")
    s, task = ctx.settings, ctx.task
    teacher_record = read_stage(ctx.out, "teacher")
    teacher_dir = stage_dir(ctx.out, "teacher")
    inputs: dict[str, Any] = {"data": ctx.data.identity, "teacher": teacher_dir}
    if s.student_weights:
        inputs["student_weights"] = Path(s.student_weights)

    def body(folder: Path) -> dict[str, Any]:
        data = ctx.data
        teacher = task.load_teacher(teacher_dir) if s.alpha > 0 else None
        teacher_layers = task.teacher_layers(s)
        x_eval = ctx.eval_images()
        chain = task.student_chain(ctx, teacher_record["result"]["params"])
        steps: list[dict[str, Any]] = []
        guide_spec = None
        for k, (label, spec) in enumerate(chain):
            last = k == len(chain) - 1
            torch.manual_seed(s.seed if last else s.seed + 1 + k)
            model = task.build_model(spec)
            start = task.init_student(ctx, model, spec) if last else None
            if start:
                ctx.console.print(f"{label}: starts from {start}", markup=False, highlight=False)
            model.train()
            trained = task.distill(ctx, model, teacher, teacher_layers, label)
            model.eval()
            if last:
                break
            scores = task.score(data, data.eval_split, task.outputs(model, x_eval))
            summary = task.describe(model, spec)
            ctx.console.print(f"{label}: {summary['params']:,} parameters, {data.eval_split} {task.format_scores(scores)}")
            steps.append({"label": label, "width": spec["width"], "params": summary["params"], **scores,
                          "history": trained.history, **trained.extra})
            for p in model.parameters():
                p.requires_grad_(False)
            teacher, guide_spec, teacher_layers = model, spec, list(s.student_layers)
        task.save_model(model, folder, chain[-1][1])
        if guide_spec is not None:
            (folder / GUIDE).mkdir()
            task.save_model(teacher, folder / GUIDE, guide_spec)
        outputs = task.outputs(model, x_eval)
        save_outputs(folder, outputs)
        scores = task.score(data, data.eval_split, outputs)
        summary = task.describe(model, chain[-1][1])
        ratio = teacher_record["result"]["params"] / summary["params"]
        how = "from the labels alone (alpha 0)" if s.alpha == 0 else f"by {s.method}"
        ctx.console.print(f"distill: {summary['arch']} x{summary['width']} {how}, {summary['params']:,} parameters "
                          f"(teacher/student {ratio:.1f}x), {data.eval_split} {task.format_scores(scores)}")
        return {**scores, "split": data.eval_split, **summary, "teacher_to_student_params": round(ratio, 2),
                "temperature": s.temperature, "alpha": s.alpha, "method": s.method, "intermediate": steps,
                "history": trained.history, **trained.extra, **({"initial_weights": start} if start else {})}

    return run_stage("distill", VERSION + ctx.task.training_version, s.fingerprint(), inputs, ctx.out, body,
                     force=ctx.force, console=ctx.console)

