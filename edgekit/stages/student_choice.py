"""Before any stage: choose the student for the target's budgets (``--student auto``), or check that the one given
fits its latency budget, and keep the table of candidates in ``<out>/student_choice/stage.json``.

The choice sets the run's student, width and input size, so every stage's fingerprint holds the chosen values and a
rerun of the same command reuses the finished stages. The table is recomputed only when what it depends on (target,
threads, budgets, margin, candidates, class count, the data's native size) changes.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from edgekit.choose.pick import closest, pick_student
from edgekit.config import AUTO, Settings, run_budgets
from edgekit.errors import EdgekitError
from edgekit.pipeline.atomic import write_json_atomic

FOLDER = "student_choice"
RECORD = "stage.json"
VERSION = "1"
TRAINING = ("teacher", "distill", "quantize")


def record_path(out: Path) -> Path:
    return Path(out) / FOLDER / RECORD


def read_choice(out: Path) -> dict[str, Any] | None:
    """The recorded choice of a run, or None (no latency budget, or an older run)."""
    try:
        return json.loads(record_path(out).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def _nothing_to_choose(out: Path, stages: list[str], write: bool) -> None:
    """A training run without a choice: an earlier run's record in the folder no longer describes it."""
    if write and set(TRAINING) & set(stages):
        record_path(out).unlink(missing_ok=True)


def plan_student(settings: Settings, out: Path, stages: list[str], task: Any, write: bool = True
                 ) -> dict[str, Any] | None:
    """Resolve ``--student auto`` in ``settings`` (student, width, size) and return the choice record; for a
    given student under a latency budget, refuse it before training when its estimate misses. None when there is
    nothing to choose or check. ``write=False`` (``--dry-run``) leaves the run folder untouched."""
    budgets = run_budgets(settings)
    latency, size_mb = budgets.get("latency_ms"), budgets.get("size_mb")
    auto = settings.student == AUTO
    if not auto and (latency is None or not set(TRAINING) & set(stages)):
        _nothing_to_choose(out, stages, write)
        return None
    from edgekit.bench.threads import thread_counts
    from edgekit.estimate.target_estimate import calibrate
    from edgekit.estimate.target_profiles import load_target

    profile = load_target(settings.target)
    if not auto and calibrate(profile) is None:
        _nothing_to_choose(out, stages, write)
        return None  # a measured-only target: no estimate to check the given student against before training
    threads = thread_counts(settings.threads, profile).target
    inputs = task.choice_inputs(settings, auto)
    classes, native, candidates = inputs.classes, inputs.native, inputs.candidates
    params = {"version": VERSION, "mode": "auto" if auto else "given", "target": profile["name"], "threads": threads,
              "latency_ms": latency, "size_mb": size_mb if auto else None, "margin": settings.latency_margin,
              "classes": classes, "native_size": native, "candidates": [c.label for c in candidates]}
    recorded = read_choice(out)
    if recorded and recorded.get("params") == params:
        rows = [dict(r) for r in recorded["rows"]]
    else:
        from edgekit.choose.cost import candidate_costs

        rows = candidate_costs(candidates, inputs.build, profile, threads)
    chosen = pick_student(rows, latency, params["size_mb"], settings.latency_margin)
    record = {"stage": FOLDER, "params": params, "rows": rows, "chosen": chosen and chosen["candidate"],
              "target_description": profile.get("description", profile["name"])}
    if chosen is None:
        near = closest(rows, latency, params["size_mb"])
        limits = ", ".join(f"{k}={v:g}" for k, v in (("latency_ms", latency), ("size_mb", params["size_mb"])) if v)
        if auto:
            raise EdgekitError(f"no candidate student fits {limits} on {profile['name']}: the closest, "
                               f"{near['candidate']}, is estimated at {near['estimate_ms']:.2f} ms "
                               f"(+{near['band_pct']:.0f} % band: {near['charged_ms']:.2f} ms) and "
                               f"{near['int8_bytes'] / 1e6:.2f} MB",
                               "loosen the budget, lower --latency-margin, or give [[candidates]] in --config")
        raise EdgekitError(f"{near['candidate']} misses latency_ms={latency:g} on {profile['name']} before training: "
                           f"estimated {near['estimate_ms']:.2f} ms (+{near['band_pct']:.0f} % band: "
                           f"{near['charged_ms']:.2f} ms)",
                           "pass --student auto to train the most capable student that fits, or a looser budget")
    if auto:
        if task.name == "classify":  # detection has one student architecture, TinyDetector
            settings.student = chosen["arch"]
        settings.width, settings.size = float(chosen["width"]), int(chosen["size"])
    if write:
        record_path(out).parent.mkdir(parents=True, exist_ok=True)
        write_json_atomic(record_path(out), record)
    return record
