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
from edgekit.models.user_weights import STATE_DICT_SUFFIXES, check_teacher_file, check_weights_file
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
    if "distill" in stages and settings.student_weights is not None:
        check_weights_file(Path(settings.student_weights), "--student-weights", STATE_DICT_SUFFIXES)


def preflight(ctx: StageContext, stages: list[str]) -> None:
    """Every check that needs no training: paths, data layout, target, architecture names, the teacher file."""
    quick_checks(ctx.settings, ctx.out, stages)
    ctx.task.check_models(ctx, stages)  # decodes the data too, which validates every image and label file
    if "export" in stages:
        check_goal_split(ctx.settings, ctx.data)


def check_goal_split(settings: Settings, data: Any) -> None:
    """An accuracy goal (edgekit/widen/) is judged on a labelled test split; the ranking reads the validation split."""
    from edgekit.config import run_budgets

    if (settings.max_drop is not None or "accuracy" in run_budgets(settings)) and "test" not in data.splits:
        raise EdgekitError(f"an accuracy goal (--max-drop or an accuracy budget) needs a labelled test split; "
                           f"{getattr(data, 'source', 'the data')} has only {', '.join(sorted(data.splits))}",
                           "add a test/ split with labels, or drop --max-drop and the accuracy budget")


def forced_stages(stages: list[str], force: bool, force_stage: str | None) -> set[str]:
    """The stages to rerun from scratch: all with --force; with --force-stage NAME, NAME and every later one."""
    if force_stage is not None and force_stage not in ORDER:
        close = difflib.get_close_matches(force_stage, ORDER, n=1)
        raise EdgekitError(f"--force-stage '{force_stage}' is not a stage",
                           (f"did you mean '{close[0]}'? " if close else "") + f"stages: {', '.join(ORDER)}")
    if force:
        return set(stages)
    return set(ORDER[ORDER.index(force_stage):]) & set(stages) if force_stage else set()


def choose_student(ctx: StageContext, stages: list[str], write: bool = True) -> dict[str, Any] | None:
    """``--student auto``: the student for the target's budgets, set in the run's settings before any stage (the
    teacher trains at the chosen input size too); a given student is checked against its latency budget."""
    from edgekit.stages.student_choice import plan_student

    return plan_student(ctx.settings, ctx.out, stages, ctx.task, write)


def choice_table(record: dict[str, Any]) -> list[Any]:
    """What the choice prints (console and --dry-run): its title line, then the candidates as a rich table."""
    from rich.table import Table

    from edgekit.bench.choice_section import HEADER, choice_rows, choice_title

    table = Table()
    for column in HEADER:
        table.add_column(column)
    for row in choice_rows(record):
        table.add_row(*row)
    return [choice_title(record), table]


def run_chain(ctx: StageContext, stages: list[str], forced: set[str] | None = None) -> dict[str, dict[str, Any]]:
    from edgekit.pipeline.distributed import TRAINING_STAGES, world

    record = choose_student(ctx, stages)
    if record and world().main:
        title, table = choice_table(record)
        ctx.console.print(title, markup=False, highlight=False)
        ctx.console.print(table)
    preflight(ctx, stages)
    if ctx.settings.size_reason and world().main:  # after the checks: a bad input still fails in one line
        ctx.console.print(f"input size: {ctx.settings.size_reason}", markup=False, highlight=False)
    if ctx.settings.distill_epochs_reason and "distill" in stages and world().main:
        ctx.console.print(f"student epochs: {ctx.settings.distill_epochs_reason}", markup=False, highlight=False)

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


def dry_run(ctx: StageContext, stages: list[str], forced: set[str]) -> list[str]:
    """``--dry-run``: the plan, as ``make -n`` prints it: the student (and the candidates table when one is
    chosen), the teacher, and which stages would run and why. Nothing is trained or written."""
    record = choose_student(ctx, stages, write=False)
    preflight(ctx, stages)
    s = ctx.settings
    lines: list[str] = []
    how = f"chosen for {record['params']['target']}" if record and record["params"]["mode"] == "auto" else \
        "given; its estimate fits the latency budget" if record else "given"
    arch = s.student if ctx.task.name == "classify" else "TinyDetector"
    lines.append(f"student: {arch} x{s.width:g} at {s.size} px ({how})")
    if s.size_reason:
        lines.append(f"input size: {s.size_reason}")
    if s.distill_epochs_reason:
        lines.append(f"student epochs: {s.distill_epochs_reason}")
    if s.teacher:
        lines.append(f"teacher: your file {s.teacher}" + (f" and {len(s.extra_teachers)} more" if s.extra_teachers else ""))
    else:
        start = f", starting from torchvision {s.pretrained} weights" if s.pretrained else ""
        lines.append(f"teacher: train {ctx.task.trained_teacher(s)} at {s.size} px for {s.teacher_epochs} epochs{start}")
    for name in stages:
        lines.append(f"{name}: {_would(ctx, name, forced)}")
    lines.append("dry run: nothing was trained or written")
    return [*(choice_table(record) if record else []), *lines]


def _would(ctx: StageContext, name: str, forced: set[str]) -> str:
    """Whether a stage would run, from its record and its settings (its inputs are checked when it runs)."""
    import json

    from edgekit.pipeline.runner import STAGE_FILE, changed_params, stage_dir
    from edgekit.stages.settings import for_stage

    if name in forced:
        return "would run from scratch (--force)"
    try:
        record = json.loads((stage_dir(ctx.out, name) / STAGE_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return "would run (not run yet)"
    if record.get("status") != "complete":
        return "would run (the last run did not complete)"
    changed = changed_params(record, for_stage(ctx.settings, name).fingerprint())
    return f"would rerun (changed: {', '.join(changed)})" if changed else \
        "up to date unless its code or inputs changed (then it reruns)"
