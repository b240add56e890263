"""The stage contract: fingerprint, skip when up to date, write to a temporary sibling, rename when done."""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import time
from collections.abc import Callable
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from rich.console import Console

from edgekit.errors import EdgekitError
from edgekit.pipeline.atomic import replace_dir, write_json_atomic
from edgekit.pipeline.distributed import TRAINING_STAGES, barrier, world
from edgekit.pipeline.faults import fault_point
from edgekit.pipeline.fingerprint import fingerprint, path_digest
from edgekit.pipeline.resume import clear_stage_slot, stage_slot

STAGE_FILE = "stage.json"

# The folder each stage writes below --out. The export stage's folder is the one an app developer
# takes away, so it is called "artifacts" as in the artifact contract.
STAGE_FOLDERS = {"teacher": "teacher", "distill": "distill", "quantize": "quantize",
                 "export": "artifacts", "benchmark": "benchmark"}


def read_stage(out: Path, stage: str) -> dict[str, Any]:
    """The stage.json of a finished stage, or a user error saying which command makes it."""
    path = Path(out) / STAGE_FOLDERS[stage] / STAGE_FILE
    try:
        record = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise EdgekitError(f"no finished '{stage}' stage in {out}",
                           f"run `edgekit {stage} --out {out}` (or `edgekit compress --out {out}`) first") from None
    except json.JSONDecodeError:
        raise EdgekitError(f"{path} is corrupt", f"rerun `edgekit {stage} --out {out} --force`") from None
    if record.get("status") != "complete":
        raise EdgekitError(f"the '{stage}' stage in {out} did not complete", f"rerun `edgekit {stage} --out {out}`")
    return record


def stage_dir(out: Path, stage: str) -> Path:
    return Path(out) / STAGE_FOLDERS[stage]


def changed_params(record: dict[str, Any], params: dict[str, Any]) -> list[str]:
    """The settings whose value differs from the ones a stage record was made with."""
    old_params = record.get("params", {})
    return [k for k in params if old_params.get(k) != params[k]]


def _why_stale(record: dict[str, Any], version: str, params: dict[str, Any], digests: dict[str, str]) -> str:
    """Name what changed since the recorded run, as DVC does."""
    if record.get("status") != "complete":
        return "the last run did not complete"
    if record.get("version") != version:
        return f"the stage's code changed (version {record.get('version')} -> {version})"
    old_inputs = record.get("inputs", {})
    changed = changed_params(record, params)
    changed += [f"input {k}" for k in digests if old_inputs.get(k) != digests[k]]
    return "changed: " + ", ".join(changed) if changed else "its record differs"


def _remove_leftovers(out: Path, folder: str) -> None:
    """Temporary folders of a killed run (``.distill.partial-<pid>``, ``.distill.old-<pid>``): the run lock
    (pipeline/run_lock.py) guarantees no other command is writing them."""
    for leftover in list(out.glob(f".{folder}.partial-*")) + list(out.glob(f".{folder}.old-*")):
        shutil.rmtree(leftover, ignore_errors=True)


def run_stage(
    stage: str,
    version: str,
    params: dict[str, Any],
    inputs: dict[str, Path | str],
    out: Path,
    body: Callable[[Path], dict[str, Any]],
    *,
    force: bool = False,
    console: Console | None = None,
) -> dict[str, Any]:
    """Run ``body(tmp_dir)`` unless ``out/<folder>/stage.json`` already holds this fingerprint.

    ``inputs`` maps a name to a path (hashed by content) or to a string that already identifies the
    content (a data set version, say). Returns the stage record (with ``result``).
    """
    console = console or Console(stderr=True, soft_wrap=True)
    out = Path(out)
    digests = {k: (path_digest(Path(v)) if isinstance(v, Path) else str(v)) for k, v in inputs.items()}
    if world().size > 1:  # several processes train differently (per-process batch norm, sharded batches)
        digests["processes"] = str(world().size)
    fp = fingerprint(stage, version, params, digests)
    final = stage_dir(out, stage)
    record_path = final / STAGE_FILE
    if not force and record_path.is_file():
        try:
            record = json.loads(record_path.read_text(encoding="utf-8"))
        except json.JSONDecodeError:
            record = {}
        if record.get("fingerprint") == fp and record.get("status") == "complete":
            console.print(f"{stage}: up to date")
            return record
        if record:
            console.print(f"{stage}: {_why_stale(record, version, params, digests)}, rerunning")
    if not world().main:
        return _follow(stage, out, fp, body)
    out.mkdir(parents=True, exist_ok=True)
    _remove_leftovers(out, final.name)
    if force:
        clear_stage_slot(out, stage)  # --force starts over, not from a checkpoint
    if stage in TRAINING_STAGES:
        barrier()  # the others read the checkpoints only now
    tmp = out / f".{final.name}.partial-{os.getpid()}"
    tmp.mkdir()
    started = time.perf_counter()
    try:
        with stage_slot(out, stage, fp) as checkpoints:
            result = body(tmp)
        record = {
            "stage": stage,
            "version": version,
            "status": "complete",
            "fingerprint": fp,
            "params": params,
            "inputs": digests,
            "seconds": round(time.perf_counter() - started, 3),
            "checkpoints": {"writes": checkpoints["writes"], "seconds": round(checkpoints["seconds"], 3)},
            "finished_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            "result": result,
        }
        write_json_atomic(tmp / STAGE_FILE, record)
        fault_point("stage-done")
        replace_dir(tmp, final)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    clear_stage_slot(out, stage)
    if stage in TRAINING_STAGES:
        barrier()  # the others go on only once this stage is in place
    console.print(f"{stage}: done in {record['seconds']:.1f} s")
    return record


def _follow(stage: str, out: Path, fp: str, body: Callable[[Path], dict[str, Any]]) -> dict[str, Any]:
    """A process other than rank 0: train in lockstep, write into a scratch folder that is thrown away."""
    barrier()
    with tempfile.TemporaryDirectory(prefix=f"edgekit-{stage}-rank{world().rank}-") as scratch, \
            stage_slot(out, stage, fp):
        result = body(Path(scratch))
    barrier()
    return {"stage": stage, "status": "complete", "fingerprint": fp, "result": result}
