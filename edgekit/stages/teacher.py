"""Stage 1: train a teacher on the data, or load the user's (an ensemble of several), and measure it."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from edgekit.config import method_strategy
from edgekit.models.stage_models import ENSEMBLE_FILE, member_dir
from edgekit.models.user_weights import check_teacher_file
from edgekit.pipeline.atomic import write_json_atomic
from edgekit.pipeline.runner import run_stage
from edgekit.stages.context import StageContext

VERSION = "3"  # 2: augmentation drawn per epoch and image (train_loop.epoch_plan); ensembles; self. 3: one chain for every task


def run(ctx: StageContext) -> dict[str, Any]:
    ctx = ctx.for_stage("teacher")
    s, task = ctx.settings, ctx.task
    files = [Path(f) for f in ([s.teacher] if s.teacher else []) + list(s.extra_teachers)]
    inputs: dict[str, Any] = {"data": ctx.data.identity}
    for i, path in enumerate(files):
        check_teacher_file(path)
        inputs["teacher_file" if i == 0 else f"teacher_file_{i + 1}"] = path
    ensemble = method_strategy(s.method) == "ensemble"
    count = len(files) or (s.ensemble_size if ensemble else 1)

    def body(folder: Path) -> dict[str, Any]:
        data, x_eval = ctx.data, ctx.eval_images()
        members = []
        for i in range(count):
            member_folder = member_dir(folder, i)
            member_folder.mkdir(parents=True, exist_ok=True)
            if files:
                made = task.load_user_teacher(ctx, files[i], member_folder)
            else:
                made = task.train_teacher(ctx, member_folder, s.seed + i,
                                          "teacher" if count == 1 else f"teacher ({i + 1} of {count})")
            scores = task.score(data, data.eval_split, task.outputs(made.model, x_eval))
            members.append({**task.describe(made.model), **scores, **made.extra, "history": made.history})
        if count == 1:
            member = members[0]
            ctx.console.print(f"teacher: {member['source']}, {data.eval_split} {task.format_scores(member)}")
            return {**member, "split": data.eval_split}
        write_json_atomic(folder / ENSEMBLE_FILE, {"members": count, "weights": s.teacher_weights or [1.0] * count})
        scores = task.score(data, data.eval_split, task.outputs(task.load_teacher(folder), x_eval))
        for i, m in enumerate(members):
            ctx.console.print(f"teacher {i + 1} of {count}: {m['source']}, {data.eval_split} {task.format_scores(m)}")
        ctx.console.print(f"teacher: ensemble of {count}, {data.eval_split} {task.format_scores(scores)}")
        return {**scores, "split": data.eval_split, "params": sum(m["params"] for m in members),
                "arch": f"ensemble of {count} {s.teacher_arch}" if not files else f"ensemble of {count}",
                "source": f"ensemble of {count}: " + "; ".join(m["source"] for m in members),
                "members": [{k: v for k, v in m.items() if k != "history"} for m in members],
                "history": members[0]["history"]}

    return run_stage("teacher", VERSION + ctx.task.training_version, s.fingerprint(), inputs, ctx.out, body,
                     force=ctx.force, console=ctx.console)
