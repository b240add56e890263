"""`edgekit benchmark` on a finished run and on single files: target estimates, budgets and exit codes,
--device local, the report's JSON schema, and the HTML in a real browser."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from importlib import resources
from pathlib import Path

import pytest

from conftest import run_cli

ARTIFACTS = ("model_fp32.onnx", "model_int8.onnx", "model_fp32.tflite", "model_int8.tflite")


@pytest.fixture()
def run_copy(e2e_run: Path, tmp_path: Path) -> Path:
    """A private copy of the shared run, so these tests may rewrite its reports."""
    return Path(shutil.copytree(e2e_run / "run", tmp_path / "run", symlinks=True))


def _schema_errors(report: dict) -> list[str]:
    import jsonschema

    schema = json.loads(resources.files("edgekit.bench").joinpath("report.schema.json").read_text(encoding="utf-8"))
    validator = jsonschema.Draft202012Validator(schema)
    return [f"{'/'.join(map(str, e.absolute_path))}: {e.message}" for e in validator.iter_errors(report)]


def test_compress_report_follows_the_json_schema(e2e_run: Path) -> None:
    report = json.loads((e2e_run / "run" / "report.json").read_text(encoding="utf-8"))
    assert _schema_errors(report) == []
    # a broken report is caught: the schema is not vacuous
    broken = dict(report, artifacts=[dict(report["artifacts"][0], sha256="xyz")])
    assert _schema_errors(broken)


def test_compress_report_estimates_every_artifact_on_rpi4(e2e_run: Path) -> None:
    report = json.loads((e2e_run / "run" / "report.json").read_text(encoding="utf-8"))
    assert report["target"]["name"] == "rpi4"
    assert report["target"]["calibration"]["figures"] >= 6
    for a in report["artifacts"]:
        est = a["target_estimate"]
        assert est["ms"] > 0 and est["low_ms"] < est["ms"] < est["high_ms"], a["name"]
        assert est["threads"] == 4 and "leave-one-out" in est["method"]
        assert set(est["breakdown_ms"]) >= {"conv", "depthwise"}
    by_name = {a["name"]: a for a in report["artifacts"]}
    # the walker sees the same network in both formats
    for precision in ("fp32", "int8"):
        onnx, tflite = by_name[f"model_{precision}.onnx"]["graph"], by_name[f"model_{precision}.tflite"]["graph"]
        assert onnx["macs"] == tflite["macs"] and onnx["ops"] == tflite["ops"]
        assert onnx["precision"] == tflite["precision"] == precision
    assert by_name["model_int8.tflite"]["target_estimate"]["ms"] < by_name["model_fp32.tflite"]["target_estimate"]["ms"]
    assert by_name["model_int8.onnx"]["host_op_ms"], "onnxruntime's profiler gave no per-operator times"
    assert report["deploy"]["name"] in ARTIFACTS
    md = (e2e_run / "run" / "report.md").read_text(encoding="utf-8")
    assert "Deploy this one" in md and "±" in md and "leave-one-out" in md.lower()


def test_missed_budget_exits_1_and_says_which(run_copy: Path, tmp_path: Path) -> None:
    summary = tmp_path / "step_summary.md"
    import os

    env_before = os.environ.get("GITHUB_STEP_SUMMARY")
    os.environ["GITHUB_STEP_SUMMARY"] = str(summary)
    try:
        result = run_cli(["benchmark", str(run_copy), "--budget", "size_mb=1.0", "--budget", "accuracy=0.5"],
                         cwd=tmp_path)
    finally:
        if env_before is None:
            del os.environ["GITHUB_STEP_SUMMARY"]
        else:
            os.environ["GITHUB_STEP_SUMMARY"] = env_before
    assert result.returncode == 1, result.stderr[-3000:]
    assert "benchmark: up to date" in result.stderr  # the budget did not re-measure anything
    failed = [line for line in result.stderr.splitlines() if line.startswith("budget failed:")]
    assert any("model_fp32.tflite size_mb" in line and "missed by" in line for line in failed), result.stderr
    assert not any("accuracy" in line for line in failed)
    report = json.loads((run_copy / "report.json").read_text(encoding="utf-8"))
    marks = {a["name"]: a["budgets"] for a in report["artifacts"]}
    assert not marks["model_fp32.tflite"]["size_mb"]["passed"]
    assert marks["model_int8.tflite"]["size_mb"]["passed"], "the INT8 file is under 1 MB"
    assert report["deploy"]["name"] in ("model_int8.tflite", "model_int8.onnx")
    assert "# edgekit report" in summary.read_text(encoding="utf-8")
    assert _schema_errors(report) == []


def test_met_budgets_and_device_local_exit_0(run_copy: Path, tmp_path: Path) -> None:
    result = run_cli(["benchmark", str(run_copy), "--target", "rpi5", "--threads", "2", "--device", "local",
                      "--budget", "latency_ms=1000", "--budget", "agreement=0.9"], cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    report = json.loads((run_copy / "report.json").read_text(encoding="utf-8"))
    assert report["target"]["name"] == "rpi5" and report["budgets"] == {"latency_ms": 1000.0, "agreement": 0.9,
                                                                         "size_mb": 16.0}
    for a in report["artifacts"]:
        assert a["device_latency_ms"]["p50"] > 0 and a["device_latency_ms"]["device"] == "local"
        assert a["target_estimate"]["threads"] == 2
        assert all(mark["passed"] for mark in a["budgets"].values())
    assert _schema_errors(report) == []


def test_single_file_benchmark(run_copy: Path, tmp_path: Path) -> None:
    model = run_copy / "artifacts" / "model_int8.tflite"
    out = tmp_path / "bench"
    result = run_cli(["benchmark", str(model), "--target", "android-arm64", "--out", str(out)], cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    report = json.loads((out / "report.json").read_text(encoding="utf-8"))
    assert _schema_errors(report) == []
    [artifact] = report["artifacts"]
    assert artifact["name"] == "model_int8.tflite" and artifact["precision"] == "int8"
    assert artifact["accuracy"] is None and artifact["latency_ms"]["p50"] > 0
    assert artifact["target_estimate"]["ms"] > 0 and report["deploy"]["name"] == "model_int8.tflite"
    assert (out / "report.md").is_file() and (out / "report.html").is_file()


def test_board_runner_runs_alone(run_copy: Path) -> None:
    """The file copied to a board needs no edgekit: run it by path, with only numpy and the runtime."""
    runner = resources.files("edgekit.device").joinpath("board_runner.py")
    for name in ("model_int8.tflite", "model_fp32.onnx"):
        done = subprocess.run([sys.executable, str(runner), str(run_copy / "artifacts" / name), "--threads", "1",
                               "--runs", "3", "--warmup", "1"], capture_output=True, text=True, timeout=120,
                              cwd=run_copy, env={"PATH": "/usr/bin:/bin"})
        assert done.returncode == 0, done.stderr
        result = json.loads(done.stdout)
        assert result["p50"] > 0 and result["runs"] >= 3 and result["threads"] == 1


def _browser() -> str | None:
    for name in ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable"):
        if shutil.which(name):
            return shutil.which(name)
    return None


def test_html_report_renders_in_a_headless_browser(e2e_run: Path, tmp_path: Path) -> None:
    browser = _browser()
    if browser is None:
        pytest.skip("no chromium on this machine (Debian: apt install chromium)")
    page = e2e_run / "run" / "report.html"
    done = subprocess.run([browser, "--headless", "--no-sandbox", "--disable-gpu", f"--user-data-dir={tmp_path}",
                           "--dump-dom", page.as_uri()], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    dom = done.stdout
    assert "Deploy this one" in dom
    assert dom.count("<svg") >= 2, "the accuracy/latency plot and the breakdown plot are in the page"
    assert "<script" not in dom and "<link" not in dom and "<img" not in dom  # self-contained: nothing fetched
