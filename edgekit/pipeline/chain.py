"""The chain of stages and the checks that run before any of them, so a bad input fails in seconds."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from edgekit.bench.targets import load_target
from edgekit.errors import EdgekitError
from edgekit.models.builders import build_model, student_spec
from edgekit.models.user_weights import check_teacher_file, check_teacher_outputs, load_user_teacher
from edgekit.stages import benchmark, distill, export, quantize, teacher
from edgekit.stages.common import StageContext

STAGES: dict[str, Callable[[StageContext], dict[str, Any]]] = {
    "teacher": teacher.run, "distill": distill.run, "quantize": quantize.run, "export": export.run,
    "benchmark": benchmark.run,
}
ORDER = tuple(STAGES)


def check_out_dir(out: Path) -> None:
    if out.exists() and not out.is_dir():
        raise EdgekitError(f"--out {out} is an existing file", "pass a directory path (new or from an earlier run)")


def preflight(ctx: StageContext, stages: list[str]) -> None:
    """Every check that needs no training: paths, data layout, target, architecture names."""
    s = ctx.settings
    check_out_dir(ctx.out)
    if "benchmark" in stages:
        load_target(s.target)
    if "distill" in stages:
        student_spec(s.student, s.width, 2)
    if "teacher" in stages:
        if s.teacher is not None:
            check_teacher_file(Path(s.teacher))
        build_model({"arch": s.teacher_arch, "num_classes": 2})
    n_classes = len(ctx.data.classes)  # decoding the data validates its layout and every image
    if "teacher" in stages and s.teacher is not None:
        model, _ = load_user_teacher(Path(s.teacher), s.teacher_arch, n_classes)  # reads and matches the weights
        check_teacher_outputs(model, ctx.eval_split()[0][:2], n_classes, s.teacher)


def run_chain(ctx: StageContext, stages: list[str]) -> dict[str, dict[str, Any]]:
    preflight(ctx, stages)
    records = {}
    for name in stages:
        records[name] = STAGES[name](ctx)
    if "benchmark" in stages:
        benchmark.publish_reports(ctx.out)
    return records
