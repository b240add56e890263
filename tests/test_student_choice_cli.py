"""The target picks the student, through the real CLI: ``--dry-run`` prints the plan and writes nothing; a latency
budget makes ``--student auto`` the default, the choice sets the trained student and its input size, the reports
hold the candidates table and the check after training, and a rerun of the same command is up to date."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from conftest import CliResult, run_cli

# Two candidates at the built-in data's size keep the run small; both fit 50 ms, so the one with more MACs wins.
CONFIG = """\
teacher_epochs = 1
distill_epochs = 1
qat_epochs = 1
latency_runs = 5
latency_seconds = 0.5

[[candidates]]
arch = "mobilenet_v2"
widths = [0.35, 0.5]
sizes = [32]
"""
FLAGS = ["--budget", "latency_ms=50"]
CHOSEN = "mobilenet_v2 x0.5 @ 32 px"


def test_dry_run_prints_the_plan_and_writes_nothing(tmp_path: Path) -> None:
    """The default candidates for 32 px data under 1 ms on rpi4: a table, one CHOSEN row, the student line says
    the same, every stage would run, and --out is not created."""
    out = tmp_path / "run"
    result = run_cli(["compress", "--budget", "latency_ms=1", "--dry-run", "--out", str(out)], cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    chosen = [line for line in result.stdout.splitlines() if line.startswith("│") and "CHOSEN" in line]
    assert len(chosen) == 1, result.stdout
    student = re.search(r"^student: (\S+) x(\S+) at (\d+) px \(chosen for rpi4\)$", result.stdout, re.M)
    assert student, result.stdout
    arch, width, size = student.groups()
    assert f"{arch} x{width} @ {size} px" in chosen[0]
    assert "teacher: train resnet18 at " + size + " px" in result.stdout
    for stage in ("teacher", "distill", "quantize", "export", "benchmark"):
        assert f"{stage}: would run (not run yet)" in result.stdout
    assert "dry run: nothing was trained or written" in result.stdout
    assert not out.exists()


def test_detection_chooses_the_tiny_detector_width(tmp_path: Path) -> None:
    """TinyDetector widths at the run's input size (96 px on the built-in scenes); the widest that fits 2 ms."""
    out = tmp_path / "run"
    result = run_cli(["compress", "--task", "detect", "--budget", "latency_ms=2", "--dry-run", "--out", str(out)],
                     cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    rows = [line for line in result.stdout.splitlines() if line.startswith("│") and "tiny_detector x" in line]
    assert len(rows) == 4 and sum("CHOSEN" in line for line in rows) == 1, result.stdout
    student = re.search(r"^student: TinyDetector x(\S+) at 96 px \(chosen for rpi4\)$", result.stdout, re.M)
    assert student and f"tiny_detector x{student.group(1)} @ 96 px" in next(r for r in rows if "CHOSEN" in r)
    assert not out.exists()


@pytest.fixture(scope="module")
def auto_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, CliResult]:
    folder = tmp_path_factory.mktemp("auto")
    (folder / "edgekit.toml").write_text(CONFIG, encoding="utf-8")
    result = run_cli(["compress", "--config", str(folder / "edgekit.toml"), *FLAGS, "--out", str(folder / "run")],
                     cwd=folder, timeout=1200)
    return folder, result


def test_a_latency_budget_chooses_the_student(auto_run: tuple[Path, CliResult]) -> None:
    folder, result = auto_run
    assert result.returncode == 0, result.stderr[-4000:]
    run = folder / "run"
    choice = json.loads((run / "student_choice" / "stage.json").read_text(encoding="utf-8"))
    assert choice["chosen"] == CHOSEN and choice["params"]["mode"] == "auto"
    assert [r["candidate"] for r in choice["rows"]] == ["mobilenet_v2 x0.35 @ 32 px", CHOSEN]
    distill = json.loads((run / "distill" / "stage.json").read_text(encoding="utf-8"))
    assert (distill["result"]["arch"], distill["result"]["width"]) == ("mobilenet_v2", 0.5)
    assert f"Student chosen before training for latency_ms=50, size_mb=8 on rpi4" in result.stderr
    assert "CHOSEN: the most MACs that fit" in result.stderr
    assert "Before training the chosen student was estimated at" in result.stdout


def test_the_reports_compare_the_estimate_before_and_after_training(auto_run: tuple[Path, CliResult]) -> None:
    """The pre-training estimate from the untrained graph is within 10 % of its own INT8 .tflite's estimate."""
    folder, _ = auto_run
    report = json.loads((folder / "run" / "report.json").read_text(encoding="utf-8"))
    section = report["student_choice"]
    assert section["chosen"] == CHOSEN
    check = section["after_training"]
    assert check["file"] == "model_int8.tflite"
    assert abs(check["pre_training_estimate_ms"] - check["file_estimate_ms"]) <= 0.10 * check["file_estimate_ms"]
    assert check["file_within_budget"] is True and check["host_ms"] > 0
    markdown = (folder / "run" / "report.md").read_text(encoding="utf-8")
    assert "## Student choice" in markdown and CHOSEN in markdown and "Before training the chosen student" in markdown
    html = (folder / "run" / "report.html").read_text(encoding="utf-8")
    assert "<h2>Student choice</h2>" in html and CHOSEN in html
    from test_benchmark_command import _schema_errors

    assert _schema_errors(report) == []


def test_the_same_command_again_is_up_to_date(auto_run: tuple[Path, CliResult]) -> None:
    folder, _ = auto_run
    again = run_cli(["compress", "--config", str(folder / "edgekit.toml"), *FLAGS, "--out", str(folder / "run")],
                    cwd=folder, timeout=600)
    assert again.returncode == 0, again.stderr[-3000:]
    for stage in ("teacher", "distill", "quantize", "export", "benchmark"):
        assert f"{stage}: up to date" in again.stderr


def test_dry_run_on_a_finished_run_names_what_would_rerun(auto_run: tuple[Path, CliResult]) -> None:
    """Without the budget the default student (x0.35) applies: the dry run says which stages would rerun and
    why, and leaves the run as it was."""
    folder, _ = auto_run
    run = folder / "run"
    before = (run / "student_choice" / "stage.json").read_bytes()
    plan = run_cli(["compress", "--config", str(folder / "edgekit.toml"), "--dry-run", "--out", str(run)], cwd=folder)
    assert plan.returncode == 0, plan.stderr[-3000:]
    assert "student: mobilenet_v2 x0.35 at 32 px (given)" in plan.stdout
    assert "teacher: up to date unless its code or inputs changed" in plan.stdout
    assert "distill: would rerun (changed: width)" in plan.stdout
    assert (run / "student_choice" / "stage.json").read_bytes() == before
