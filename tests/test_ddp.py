"""Two training processes (DistributedDataParallel over gloo) through the real CLI.

`compress --nproc 2` must finish and write one report, with only rank 0 writing into the run folder;
killed after an epoch (both processes, by the fault point), the same command resumes and ends with
the uninterrupted two-process run's weights, bit for bit.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest

from conftest import make_image_folder, run_cli
from edgekit.registry import ARTIFACTS

CONFIG = """\
teacher_epochs = 2
distill_epochs = 3
qat_epochs = 1
batch_size = 32
teacher_lr = 0.01
distill_lr = 0.01
latency_runs = 5
latency_seconds = 0.3
"""
FLAGS = ["--size", "16", "--method", "kd+at", "--nproc", "2"]


@pytest.fixture(scope="module")
def work(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("ddp")
    make_image_folder(root / "data", {"train": ["a", "b", "c"], "test": ["a", "b", "c"]}, per_class=12)
    (root / "edgekit.toml").write_text(CONFIG, encoding="utf-8")
    return root


def _run(work: Path, command: str, out: str, kill_at: str | None = None):  # noqa: ANN202
    return run_cli([command, *FLAGS, "--data", str(work / "data"), "--config", str(work / "edgekit.toml"), "--out", out],
                   cwd=work, timeout=900, env_extra={"EDGEKIT_KILL_AT": kill_at} if kill_at else None)


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_two_processes_finish_and_write_one_report(work: Path) -> None:
    result = _run(work, "compress", "whole")
    assert result.returncode == 0, result.stderr[-3000:]
    run = work / "whole"
    report = json.loads((run / "report.json").read_text())
    assert len(report["artifacts"]) == len(ARTIFACTS) and all(a["status"] == "ok" for a in report["artifacts"])
    assert sorted(p.name for p in run.iterdir() if not p.name.startswith(".")) == [
        "DEPLOY.md", "artifacts", "benchmark", "distill", "quantize", "report.html", "report.json", "report.md", "teacher"]
    for stage in ("teacher", "distill", "quantize"):
        assert json.loads((run / stage / "stage.json").read_text())["inputs"]["processes"] == "2"
    assert "Traceback" not in result.stderr
    assert result.stderr.count("distill: done") == 1  # the other rank's output is not shown


def test_two_processes_resume_after_a_kill_with_identical_weights(work: Path) -> None:
    """Compared with the previous test's uninterrupted run (same settings, so the same fingerprints)."""
    assert _run(work, "teacher", "killed").returncode == 0
    killed = _run(work, "distill", "killed", kill_at="epoch-end:1")  # both processes die after distill's first epoch
    assert killed.returncode != 0
    assert not (work / "killed" / "distill").exists()
    rerun = _run(work, "distill", "killed")
    assert rerun.returncode == 0, rerun.stderr[-3000:]
    assert "resuming distill from epoch 2 (1 of 3 done)" in rerun.stderr
    for stage in ("teacher", "distill"):
        assert _sha(work / "killed" / stage / "model.safetensors") == _sha(work / "whole" / stage / "model.safetensors")
