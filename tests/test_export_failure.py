"""A requested file that fails to export or to load: the others are still written, the reports mark its row
failed, the deploy line says why it picked what it picked, and the run exits 1 with one line naming the file.
A rerun retries the failed file rather than reusing the failure as "up to date".

The conversion failure is provoked in the real command through ``EDGEKIT_FAIL_AT`` (edgekit/pipeline/faults.py).
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from rich.console import Console

from conftest import E2E_FLAGS, run_cli
from edgekit.export.guarded import FAILED_FILES, failure_lines, guarded_export, retry_failed
from edgekit.pipeline.faults import FAIL_ENV
from edgekit.pipeline.runner import STAGE_FILE
from edgekit.registry import ARTIFACTS
from test_benchmark_command import _schema_errors

FAILED = "model_int8.tflite"
OTHERS = tuple(a["name"] for a in ARTIFACTS if a["name"] != FAILED)  # every other file of the run


def _quiet() -> Console:
    return Console(quiet=True)


def _error_lines(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if line.startswith("error:")]


# --- in-process: the row, the file, the line, the retry ----------------------------------------------------

def test_a_failing_build_removes_its_file_and_records_why(tmp_path: Path) -> None:
    path = tmp_path / FAILED

    def build(p: Path) -> tuple[dict, str]:
        p.write_bytes(b"half a flatbuffer")
        raise ValueError("converter gave up\nsecond line")

    row = guarded_export({"name": FAILED, "format": "tflite", "precision": "int8"}, path, build, _quiet())
    assert not path.exists(), "a half-written file must not be left where an app would take it"
    assert row["status"] == "failed" and row["failed_in"] == "export"
    assert row["error"] == "ValueError: converter gave up"
    assert "Traceback" in row["traceback"] and "converter gave up" in row["traceback"]
    [line] = failure_lines([row, {"name": "model_fp32.onnx", "status": "ok"}], tmp_path / "run")
    assert line.startswith(f"error: {FAILED} failed to export (ValueError: converter gave up) — ")
    assert str(tmp_path / "run" / "artifacts" / STAGE_FILE) in line and "\n" not in line


def test_a_stage_that_recorded_a_failed_file_is_retried(tmp_path: Path) -> None:
    folder = tmp_path / "artifacts"
    folder.mkdir()
    record = {"status": "complete", "result": {"artifacts": [], FAILED_FILES: [FAILED]}}
    (folder / STAGE_FILE).write_text(json.dumps(record), encoding="utf-8")
    assert retry_failed(tmp_path, "export", _quiet())
    record["result"][FAILED_FILES] = []
    (folder / STAGE_FILE).write_text(json.dumps(record), encoding="utf-8")
    assert not retry_failed(tmp_path, "export", _quiet())
    assert not retry_failed(tmp_path / "nowhere", "export", _quiet())


# --- the real command on a copy of the shared run -------------------------------------------------------------

@pytest.fixture()
def work(e2e_run: Path, tmp_path: Path) -> Path:
    """A private copy of the shared run and its config: teacher, distill and quantize stay up to date."""
    folder = tmp_path / "work"
    shutil.copytree(e2e_run / "run", folder / "run", symlinks=True)
    shutil.copy(e2e_run / "edgekit.toml", folder / "edgekit.toml")
    return folder


def _command(work: Path, command: str, *extra: str, fail: bool = False):  # noqa: ANN202
    return run_cli([command, *E2E_FLAGS, "--config", str(work / "edgekit.toml"), "--out", str(work / "run"), *extra],
                   cwd=work, timeout=900, env_extra={FAIL_ENV: f"export:{FAILED}"} if fail else None)


def test_a_failed_conversion_exits_1_with_reports_and_a_retry(work: Path) -> None:
    run = work / "run"
    first = _command(work, "compress", "--force-stage", "export", fail=True)
    assert first.returncode == 1, first.stderr[-4000:]
    assert "quantize: up to date" in first.stderr
    assert "Traceback" not in first.stderr and "Traceback" not in first.stdout
    [line] = _error_lines(first.stderr)
    assert line.startswith(f"error: {FAILED} failed to export (InjectedFailure: injected failure at export:{FAILED}")
    assert " — " in line and "retry" in line
    assert first.stderr.rstrip().splitlines()[-1] == line, "the reason is the run's last word"

    # the other files are written; the failed one is not left behind half-made
    assert not (run / "artifacts" / FAILED).exists()
    assert all((run / "artifacts" / name).stat().st_size > 0 for name in OTHERS)
    preprocess = json.loads((run / "artifacts" / "preprocess.json").read_text(encoding="utf-8"))
    assert sorted(preprocess["artifacts"]) == sorted(OTHERS), "no recipe for a file that is not there"
    export_record = json.loads((run / "artifacts" / STAGE_FILE).read_text(encoding="utf-8"))
    assert export_record["result"][FAILED_FILES] == [FAILED]

    # the reports are written, with the row marked failed
    report = json.loads((run / "report.json").read_text(encoding="utf-8"))
    assert _schema_errors(report) == []
    rows = {a["name"]: a for a in report["artifacts"]}
    assert rows[FAILED]["status"] == "failed" and rows[FAILED]["failed_in"] == "export"
    assert rows[FAILED]["error"].startswith("InjectedFailure: injected failure")
    assert all(rows[name]["status"] == "ok" for name in OTHERS)
    md = (run / "report.md").read_text(encoding="utf-8")
    assert f"| {FAILED} | tflite | int8 | ❌ failed to export |" in md
    assert f"**Failed:** `{FAILED}` failed to export: InjectedFailure" in md
    assert f"Failed: <b>{FAILED}</b> failed to export: InjectedFailure" in (run / "report.html").read_text(encoding="utf-8")

    # the deploy pick: the target's runtime (LiteRT on rpi4) first, so the FP32 TFLite file, provided it qualifies
    fp32 = rows["model_fp32.tflite"]
    assert all(mark["passed"] for mark in fp32["budgets"].values()) and fp32["agreement"] >= 0.99
    assert report["deploy"]["name"] == "model_fp32.tflite"
    why = report["deploy"]["why"]
    assert why.endswith(f"{FAILED} failed to export") and "estimated on rpi4" in why
    assert f"deploy: model_fp32.tflite — {why}" in first.stdout

    # the same failure again: retried, not reused as up to date, and it fails the same way
    second = _command(work, "export", fail=True)
    assert second.returncode == 1, second.stderr[-4000:]
    assert f"export: {FAILED} failed last time; retrying" in second.stderr
    assert "export: up to date" not in second.stderr
    assert _error_lines(second.stderr) == [line]

    # the cause gone: the rerun retries it and the run is whole again
    third = _command(work, "compress")
    assert third.returncode == 0, third.stderr[-4000:]
    assert f"export: {FAILED} failed last time; retrying" in third.stderr and "quantize: up to date" in third.stderr
    assert _error_lines(third.stderr) == []
    assert (run / "artifacts" / FAILED).stat().st_size > 0
    report = json.loads((run / "report.json").read_text(encoding="utf-8"))
    assert [a["status"] for a in report["artifacts"]] == ["ok"] * len(ARTIFACTS)
    assert "failed" not in report["deploy"]["why"]


def test_a_file_its_runtime_cannot_load_exits_1(work: Path) -> None:
    """A file that was exported but no longer loads (here: truncated on disk) fails in the benchmark, alone."""
    run = work / "run"
    broken = run / "artifacts" / "model_fp32.onnx"
    broken.write_bytes(broken.read_bytes()[:100])
    result = run_cli(["benchmark", str(run)], cwd=work, timeout=600)
    assert result.returncode == 1, result.stderr[-4000:]
    assert "Traceback" not in result.stderr
    [line] = _error_lines(result.stderr)
    assert line.startswith("error: model_fp32.onnx failed to load and run in its runtime (")
    assert str(run / "benchmark" / STAGE_FILE) in line
    report = json.loads((run / "report.json").read_text(encoding="utf-8"))
    rows = {a["name"]: a for a in report["artifacts"]}
    assert rows["model_fp32.onnx"]["status"] == "failed" and rows["model_fp32.onnx"]["failed_in"] == "benchmark"
    assert [rows[n]["status"] for n in ("model_int8.onnx", "model_fp32.tflite", FAILED)] == ["ok"] * 3
    assert "model_fp32.onnx failed to load and run in its runtime" in report["deploy"]["why"]
    assert _schema_errors(report) == []
    record = json.loads((run / "benchmark" / STAGE_FILE).read_text(encoding="utf-8"))
    assert record["result"][FAILED_FILES] == ["model_fp32.onnx"] and "Traceback" in record["result"]["tracebacks"]["model_fp32.onnx"]
