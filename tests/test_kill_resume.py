"""kill -9 anywhere: a rerun of the same command finishes with the uninterrupted run's results.

The process kills itself with SIGKILL at named points (edgekit/pipeline/faults.py): inside a training
stage after an epoch, in the middle of a checkpoint write (between writing the temporary file and
renaming it), and in the export stage after some files are written. Each rerun goes on from there.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import make_image_folder, run_cli

CONFIG = """\
teacher_epochs = 2
distill_epochs = 3
qat_epochs = 1
batch_size = 8
latency_runs = 5
latency_seconds = 0.3
"""
# The data holds one truncated image, so these runs also exercise --skip-bad-images end to end.
FLAGS = ["--size", "16", "--teacher-arch", "resnet18", "--width", "0.35", "--skip-bad-images"]


def _compress(folder: Path, out: str, kill_at: str | None = None):  # noqa: ANN202
    return run_cli(["compress", *FLAGS, "--data", str(folder / "data"), "--config", str(folder / "edgekit.toml"), "--out", out],
                   cwd=folder, timeout=900, env_extra={"EDGEKIT_KILL_AT": kill_at} if kill_at else None)


def _results(run: Path) -> dict:
    """What must not depend on interruptions: every stage's result and every file's bytes (latency aside)."""
    out = {}
    for stage in ("teacher", "distill", "quantize"):
        record = json.loads((run / stage / "stage.json").read_text())
        out[stage] = {k: v for k, v in record["result"].items() if k not in ("seconds", "epoch_seconds", "soft_label_epochs")}
        out[f"{stage}/weights"] = sorted(p.name for p in (run / stage).iterdir())
    report = json.loads((run / "report.json").read_text())
    out["artifacts"] = [(a["name"], a["sha256"], a["accuracy"], a["agreement"]) for a in report["artifacts"]]
    return out


@pytest.fixture(scope="module")
def tiny_data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("kill-data")
    make_image_folder(root / "data", {"train": ["a", "b", "c"], "test": ["a", "b", "c"]}, per_class=8)
    whole = (root / "data" / "train" / "a" / "0.png").read_bytes()
    (root / "data" / "train" / "a" / "truncated.png").write_bytes(whole[:len(whole) // 2])
    (root / "edgekit.toml").write_text(CONFIG, encoding="utf-8")
    return root


def test_rerun_after_kill_9_matches_the_uninterrupted_run(tiny_data: Path) -> None:
    folder = tiny_data
    reference = _compress(folder, "ref")
    assert reference.returncode == 0, reference.stderr[-3000:]

    # 1. killed inside distill, after its 2nd of 3 epochs (teacher's 2 epochs came first)
    first = _compress(folder, "run", kill_at="epoch-end:4")
    assert first.returncode == -signal.SIGKILL
    assert (folder / "run" / "teacher" / "stage.json").is_file() and not (folder / "run" / "distill").exists()

    # 2. resumed; then killed while writing QAT's checkpoint (after distill's last epoch's, the 2nd write)
    second = _compress(folder, "run", kill_at="checkpoint-write:2")
    assert second.returncode == -signal.SIGKILL
    assert "taking over the stale lock" in second.stderr
    assert "teacher: up to date" in second.stderr
    assert "resuming distill from epoch 3 (2 of 3 done)" in second.stderr
    assert (folder / "run" / "distill" / "stage.json").is_file()
    assert list((folder / "run" / ".resume" / "quantize").glob(".*.tmp-*")), "killed between temp file and rename"

    # 3. killed in export, after two of the four files
    third = _compress(folder, "run", kill_at="export-artifact:2")
    assert third.returncode == -signal.SIGKILL
    assert "distill: up to date" in third.stderr and "resuming" not in third.stderr
    assert not (folder / "run" / "artifacts").exists(), "a half-exported folder never takes the artifacts' place"

    # 4. the rerun finishes: same weights, same files, same accuracy as the run never killed
    last = _compress(folder, "run")
    assert last.returncode == 0, last.stderr[-3000:]
    assert "quantize: up to date" in last.stderr
    assert _results(folder / "run") == _results(folder / "ref")
    data = json.loads((folder / "run" / "report.json").read_text())["data"]
    assert data["skipped_images"] == 1 and data["skipped"][0].endswith("truncated.png")
    assert "warning: skipped 1 unreadable image(s) (truncated.png)" in reference.stderr
    # The soft-label cache stays on purpose (reruns, --force-stage and tune read it); nothing else hidden may.
    leftovers = [p.name for p in (folder / "run").iterdir() if p.name.startswith(".") and p.name != ".soft_labels"]
    assert leftovers == [], f"temporary folders, checkpoints or the lock left behind: {leftovers}"
    assert not list((folder / "run" / ".soft_labels").rglob(".*tmp*")), "a torn cache write was left behind"


def test_second_command_on_a_busy_run_folder_is_refused(tiny_data: Path) -> None:
    out = tiny_data / "busy"
    out.mkdir()
    holder = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)", "edgekit-holder"])
    try:
        import socket

        (out / ".edgekit.lock").write_text(json.dumps({"pid": holder.pid, "host": socket.gethostname(),
                                                       "started": "earlier"}), encoding="utf-8")
        result = run_cli(["distill", "--out", str(out)], cwd=tiny_data)
    finally:
        holder.kill()
        holder.wait()
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and f"pid {holder.pid}" in lines[0] and "another --out" in lines[0], result.stderr
    assert sorted(p.name for p in out.iterdir()) == [".edgekit.lock"], "nothing written"
