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
from edgekit.bench.deploy_pick import pick_deployable



@pytest.fixture()
def run_copy(e2e_run: Path, tmp_path: Path) -> Path:
    """A private copy of the shared run, so these tests may rewrite its reports."""
    return Path(shutil.copytree(e2e_run / "run", tmp_path / "run", symlinks=True))


def _row(name: str, estimate_ms: float, agreement: float | None = 0.995, missed: tuple[str, ...] = (),
         device: str | None = None) -> dict:
    """A measured row as final_report.assemble leaves it: runtime from the suffix, a target estimate, budget marks."""
    runtime = "ai-edge-litert" if name.endswith(".tflite") else "onnxruntime"
    row = {"name": name, "status": "ok", "runtime": runtime, "bytes": 1000, "agreement": agreement,
           "latency_ms": {"p50": estimate_ms / 10, "p90": estimate_ms / 9, "threads": 1},
           "target_estimate": {"ms": estimate_ms, "method": "leave-one-out"},
           "budgets": {key: {"passed": key not in missed} for key in ("size_mb", "latency_ms")}}
    if device:
        row["device_latency_ms"] = {"p50": estimate_ms / 10, "device": device}
    return row


def test_deploy_pick_takes_the_targets_runtime_first_then_the_fastest() -> None:
    rows = [_row("model_fp32.onnx", 2.0), _row("model_int8.onnx", 1.0), _row("model_fp32.tflite", 4.0),
            _row("model_int8.tflite", 3.0)]
    pick = pick_deployable(rows, "ai-edge-litert", target="rpi4")
    assert pick["name"] == "model_int8.tflite"
    assert pick["why"] == ("fastest of the 4 files that pass every budget and the parity gate (agreement >= 0.99): "
                           "3.00 ms estimated on rpi4; preferred to the faster model_fp32.onnx because the target runs "
                           "ai-edge-litert, the runtime its estimate is calibrated on")
    assert pick_deployable(rows, "onnxruntime", target="x")["name"] == "model_int8.onnx"


def test_deploy_pick_leaves_out_failed_files_missed_budgets_and_low_agreement() -> None:
    rows = [_row("model_fp32.onnx", 2.0), _row("model_int8.onnx", 1.0, agreement=0.98),
            _row("model_fp32.tflite", 4.0), _row("model_int8.tflite", 3.0, missed=("latency_ms",)),
            {"name": "model_int8.tflite.bak", "format": "tflite", "precision": "int8", "status": "failed",
             "failed_in": "export", "error": "ConverterError: no"}]
    pick = pick_deployable(rows, "ai-edge-litert", target="rpi4")
    assert pick["name"] == "model_fp32.tflite"
    assert pick["why"] == ("fastest of the 2 files that pass every budget and the parity gate (agreement >= 0.99): "
                           "4.00 ms estimated on rpi4; preferred to the faster model_fp32.onnx because the target runs "
                           "ai-edge-litert, the runtime its estimate is calibrated on; model_int8.onnx agreement 0.980 "
                           "< 0.99; model_int8.tflite misses latency_ms; model_int8.tflite.bak failed to export")
    nothing = pick_deployable([r for r in rows if r["name"] != "model_fp32.tflite" and r["name"] != "model_fp32.onnx"],
                              "ai-edge-litert")
    assert nothing["name"] is None and nothing["why"].startswith("no file passes every budget and the parity gate")


def test_deploy_pick_says_where_it_was_timed() -> None:
    a, b = _row("a.tflite", 3.0, device="local"), _row("b.tflite", 5.0, device="local")
    a["device_latency_ms"]["p50"] = 0.9
    local = pick_deployable([a, b], "ai-edge-litert", target="rpi5")
    assert local["name"] == "b.tflite"  # by the measurement (0.50 ms against 0.90), not the estimate (5.00 against 3.00)
    assert "0.50 ms measured on this host (--device local)" in local["why"] and "rpi5" not in local["why"]
    board = pick_deployable([_row("a.tflite", 3.0, device="ssh://pi@board:22")], "ai-edge-litert", target="rpi5")
    assert "0.30 ms measured on ssh://pi@board:22" in board["why"]
    host = _row("a.tflite", 3.0)
    host["target_estimate"]["method"] = "measured on this host (p50; high = p90)"
    assert "3.00 ms measured on this host;" in pick_deployable([host, _row("b.tflite", 4.0)], "ai-edge-litert",
                                                                target="host")["why"] + ";"


def test_deploy_pick_of_a_lone_file_claims_no_parity() -> None:
    pick = pick_deployable([_row("m.tflite", 3.0, agreement=None)], "ai-edge-litert", target="android-arm64")
    assert pick == {"name": "m.tflite", "why": "the only file benchmarked, and it passes every budget: 3.00 ms estimated "
                                              "on android-arm64; agreement with PyTorch not measured, so the parity gate "
                                              "(>= 0.99) was not checked"}


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
        if a["format"] == "pte":  # no cost model for ExecuTorch's files: no estimate, and the report says so
            assert a["target_estimate"] is None and a["target_estimate_note"].startswith("no estimate for .pte")
            continue
        est = a["target_estimate"]
        assert est["ms"] > 0 and est["low_ms"] < est["ms"] < est["high_ms"], a["name"]
        assert est["threads"] == 4 and "leave-one-out" in est["method"]
        assert set(est["breakdown_ms"]) >= {"conv", "depthwise"}
    by_name = {a["name"]: a for a in report["artifacts"]}
    # the walker sees the same network in both formats: the same compute layers (INT8 ONNX also holds its
    # Quantize/DequantizeLinear pairs, costed as the operators they are, so only FP32 matches in total)
    for precision in ("fp32", "int8"):
        onnx, tflite = by_name[f"model_{precision}.onnx"]["graph"], by_name[f"model_{precision}.tflite"]["graph"]
        for kind in ("conv", "depthwise", "fully_connected"):
            assert onnx["kinds"][kind]["macs"] == tflite["kinds"][kind]["macs"], (precision, kind)
            assert onnx["kinds"][kind]["ops"] == tflite["kinds"][kind]["ops"], (precision, kind)
        assert onnx["precision"] == tflite["precision"] == precision
    fp32_onnx, fp32_tflite = by_name["model_fp32.onnx"]["graph"], by_name["model_fp32.tflite"]["graph"]
    assert fp32_onnx["macs"] == fp32_tflite["macs"] and fp32_onnx["ops"] == fp32_tflite["ops"]
    assert by_name["model_int8.tflite"]["target_estimate"]["ms"] < by_name["model_fp32.tflite"]["target_estimate"]["ms"]
    assert by_name["model_int8.onnx"]["host_op_ms"], "onnxruntime's profiler gave no per-operator times"
    # the rule on these rows: LiteRT (rpi4's runtime) first, then the fastest estimate that passes budgets and parity
    int8 = by_name["model_int8.tflite"]
    assert all(m["passed"] for m in int8["budgets"].values()) and int8["agreement"] >= 0.99
    assert report["deploy"]["name"] == "model_int8.tflite"
    assert report["deploy"]["why"].startswith("fastest of the ")
    assert f"{int8['target_estimate']['ms']:.2f} ms estimated on rpi4" in report["deploy"]["why"]
    md = (e2e_run / "run" / "report.md").read_text(encoding="utf-8")
    assert "Deploy this one" in md and "±" in md and "leave-one-out" in md.lower()


def _report(run: Path) -> dict:
    return json.loads((run / "report.json").read_text(encoding="utf-8"))


def test_budgets_just_above_and_below_a_measured_value(run_copy: Path, tmp_path: Path,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    """The INT8 TFLite file's own size and accuracy as limits: met exactly, and missed by a hair."""
    int8 = {a["name"]: a for a in _report(run_copy)["artifacts"]}["model_int8.tflite"]
    size_mb, accuracy = int8["bytes"] / 1e6, int8["accuracy"]
    assert 0 < accuracy < 0.999
    summary = tmp_path / "step_summary.md"
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(summary))

    met = run_cli(["benchmark", str(run_copy), "--budget", f"size_mb={size_mb + 1e-6!r}",
                   "--budget", f"accuracy={accuracy!r}"], cwd=tmp_path)
    assert "benchmark: up to date" in met.stderr  # a budget re-measures nothing
    marks = {a["name"]: a["budgets"] for a in _report(run_copy)["artifacts"]}
    assert marks["model_int8.tflite"]["size_mb"]["passed"] and marks["model_int8.tflite"]["accuracy"]["passed"]
    assert not marks["model_fp32.tflite"]["size_mb"]["passed"], "the FP32 file is larger"
    assert met.returncode == 1, met.stderr[-3000:]  # the FP32 files miss the size
    failed = [line for line in met.stderr.splitlines() if line.startswith("budget failed:")]
    assert any(line.startswith("budget failed: model_fp32.tflite size_mb:") for line in failed), met.stderr
    assert not any("model_int8.tflite" in line for line in failed)
    assert _report(run_copy)["deploy"]["name"] == "model_int8.tflite"

    missed = run_cli(["benchmark", str(run_copy), "--budget", f"size_mb={size_mb - 1e-6!r}",
                      "--budget", f"accuracy={accuracy + 1e-4!r}"], cwd=tmp_path)
    assert missed.returncode == 1, missed.stderr[-3000:]
    failed = [line for line in missed.stderr.splitlines() if line.startswith("budget failed:")]
    assert any(line.startswith("budget failed: model_int8.tflite size_mb:") for line in failed), missed.stderr
    assert any(line.startswith("budget failed: model_int8.tflite accuracy:") for line in failed), missed.stderr
    report = _report(run_copy)
    marks = {a["name"]: a["budgets"] for a in report["artifacts"]}
    assert not marks["model_int8.tflite"]["size_mb"]["passed"] and not marks["model_int8.tflite"]["accuracy"]["passed"]
    assert report["deploy"]["name"] != "model_int8.tflite"
    assert "model_int8.tflite misses size_mb, accuracy" in report["deploy"]["why"]
    assert "# edgekit report" in summary.read_text(encoding="utf-8")
    assert _schema_errors(report) == []


def test_met_budgets_and_device_local_exit_0(run_copy: Path, tmp_path: Path) -> None:
    rows = _report(run_copy)["artifacts"]
    largest_mb = max(a["bytes"] for a in rows) / 1e6
    lowest = min(a["agreement"] for a in rows)
    result = run_cli(["benchmark", str(run_copy), "--target", "rpi5", "--threads", "2", "--device", "local",
                      "--budget", f"size_mb={largest_mb!r}", "--budget", f"agreement={lowest!r}"], cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    report = _report(run_copy)
    assert report["target"]["name"] == "rpi5"
    assert report["budgets"] == {"size_mb": largest_mb, "agreement": lowest}
    for a in report["artifacts"]:
        assert a["device_latency_ms"]["p50"] > 0 and a["device_latency_ms"]["device"] == "local"
        assert a["target_estimate"] is None if a["format"] == "pte" else a["target_estimate"]["threads"] == 2
        assert all(mark["passed"] for mark in a["budgets"].values())
    # --device local measures this host, which is not the rpi5: the deploy line must not say otherwise
    why = report["deploy"]["why"]
    assert "measured on this host (--device local)" in why and "rpi5" not in why and "on the target" not in why
    assert f"deploy: {report['deploy']['name']} — {why}" in result.stdout
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
    # one file, no test data: no agreement was measured, so no parity gate was passed
    why = report["deploy"]["why"]
    assert why.startswith("the only file benchmarked, and it passes every budget: ") and "estimated on android-arm64" in why
    assert "agreement with PyTorch not measured, so the parity gate (>= 0.99) was not checked" in why
    assert "and the parity gate" not in why
    assert (out / "report.md").is_file() and (out / "report.html").is_file()


def test_single_file_benchmark_of_a_pte(run_copy: Path, tmp_path: Path) -> None:
    """A .pte alone: its precision is read from the file, host latency measured in ExecuTorch, no target estimate."""
    reports = {}
    for name in ("model_int8.pte", "model_fp32.pte"):
        out = tmp_path / name
        result = run_cli(["benchmark", str(run_copy / "artifacts" / name), "--target", "rpi4", "--out", str(out)],
                         cwd=tmp_path)
        assert result.returncode == 0, result.stderr[-3000:]
        reports[name] = report = json.loads((out / "report.json").read_text(encoding="utf-8"))
        assert _schema_errors(report) == []
        [artifact] = report["artifacts"]
        assert artifact["format"] == "pte" and artifact["runtime"] == "executorch" and artifact["latency_ms"]["p50"] > 0
        assert artifact["target_estimate"] is None and artifact["target_estimate_note"].startswith("no estimate for .pte")
    assert [r["artifacts"][0]["precision"] for r in reports.values()] == ["int8", "fp32"]


def test_board_runner_runs_alone(run_copy: Path) -> None:
    """The file copied to a board needs no edgekit: run it by path, with only numpy and the runtime."""
    runner = resources.files("edgekit.device").joinpath("board_runner.py")
    for name in ("model_int8.tflite", "model_fp32.onnx", "model_int8.pte"):
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
