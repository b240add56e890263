"""The chain of stages and the checks that run before any of them, so a bad input fails in seconds."""

from __future__ import annotations

import difflib
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from edgekit.bench.budgets import merge_budgets
from edgekit.estimate.target_profiles import load_target
from edgekit.config import Settings
from edgekit.errors import EdgekitError
from edgekit.models.user_weights import check_teacher_file
from edgekit.tasks import get_task

if TYPE_CHECKING:
    from edgekit.stages.context import StageContext

# The stage modules import torch, torchvision, onnx and the converters; they are imported only once the
# checks that need none of them have passed (``quick_checks``), so a typo fails in a fraction of a second.
ORDER = ("teacher", "distill", "quantize", "export", "benchmark")


def stage_functions() -> dict[str, Callable[[Any], dict[str, Any]]]:
    from edgekit.stages import benchmark, distill, export, quantize, teacher

    return {"teacher": teacher.run, "distill": distill.run, "quantize": quantize.run, "export": export.run,
            "benchmark": benchmark.run}


def check_out_dir(out: Path) -> None:
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise EdgekitError(f"--out {out} is an existing file", "pass a directory path (new or from an earlier run)")
    for parent in out.parents:  # the nearest existing folder above it must be a folder, or mkdir fails later
        if parent.exists():
            if not parent.is_dir():
                raise EdgekitError(f"--out {out} lies below {parent}, which is a file",
                                   "pass a directory path that is not inside a file")
            break


def quick_checks(settings: Settings, out: Path, stages: list[str]) -> None:
    """The checks that need neither torch nor decoded images: the run folder, the target, the data layout."""
    check_out_dir(out)
    if "benchmark" in stages:
        merge_budgets(load_target(settings.target), settings.budget)  # a bad profile or budget fails before training
        if settings.device:
            from edgekit.device.address import parse_device
            from edgekit.device.measure import check_reachable

            check_reachable(parse_device(settings.device))
    if "export" in stages or "benchmark" in stages:
        from edgekit.export.pte_format import check_installed

        check_installed()
    get_task(settings.task).quick_check(settings, stages)
    if "teacher" in stages and settings.teacher is not None:
        check_teacher_file(Path(settings.teacher))


def preflight(ctx: StageContext, stages: list[str]) -> None:
    """Every check that needs no training: paths, data layout, target, architecture names, the teacher file."""
    quick_checks(ctx.settings, ctx.out, stages)
    ctx.task.check_models(ctx, stages)  # decodes the data too, which validates every image and label file


def forced_stages(stages: list[str], force: bool, force_stage: str | None) -> set[str]:
    """The stages to rerun from scratch: all with --force; with --force-stage NAME, NAME and every later one."""
    if force_stage is not None and force_stage not in ORDER:
        close = difflib.get_close_matches(force_stage, ORDER, n=1)
        raise EdgekitError(f"--force-stage '{force_stage}' is not a stage",
                           (f"did you mean '{close[0]}'? " if close else "") + f"stages: {', '.join(ORDER)}")
    if force:
        return set(stages)
    return set(ORDER[ORDER.index(force_stage):]) & set(stages) if force_stage else set()


def run_chain(ctx: StageContext, stages: list[str], forced: set[str] | None = None) -> dict[str, dict[str, Any]]:
    preflight(ctx, stages)
    from edgekit.pipeline.distributed import TRAINING_STAGES, world

    functions = stage_functions()
    records = {}
    for name in stages:
        if not world().main and name not in TRAINING_STAGES:
            continue  # export, benchmark and reports are rank 0's
        ctx.force = name in (forced or set())
        records[name] = functions[name](ctx)
    if "benchmark" in stages and world().main:
        from edgekit.stages.report import run as report

        records["report"] = report(ctx)
    return records
