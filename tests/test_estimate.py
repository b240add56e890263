"""The device latency estimate: graph walking, the cost model's fit, leave-one-out, and the target profiles."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest

from edgekit.bench.targets import load_target, target_names
from edgekit.errors import EdgekitError
from edgekit.estimate.cost_model import PARAMS, Figure, Hardware, fit, leave_one_out, predict_seconds, prior
from edgekit.estimate.features import features_of
from edgekit.estimate.reference_costs import reference_features, reference_summaries
from edgekit.estimate.target_estimate import calibrate, estimate

HW = Hardware(clock_hz=1.5e9, cores=4, fp32_peak=8, int8_peak=16, cache_bytes=1 << 20)


def test_reference_networks_have_their_published_size() -> None:
    """The walker's MAC counts of the calibration networks match their papers (so its counting is right)."""
    published_macs = {"mobilenet_v1_1.0_224": 569e6, "mobilenet_v2_1.0_224": 300e6,
                      "mobilenet_v3_large_1.0_224": 219e6, "resnet50_224": 4.1e9, "inception_v3_299": 5.7e9}
    summaries = reference_summaries()
    for name, macs in published_macs.items():
        assert summaries[name]["macs"] == pytest.approx(macs, rel=0.02), name
    assert summaries["efficientdet_lite0_320"]["params"] == pytest.approx(3.2e6, rel=0.02)  # the release's 3.2 M


def test_reference_costs_json_matches_a_fresh_walk(tmp_path: Path) -> None:
    """reference_costs.json is what the code computes now, not a hand-edited table."""
    from edgekit.estimate.reference_costs import summarize_reference

    fresh = summarize_reference("mobilenet_v3_small_1.0_224", tmp_path)
    assert fresh == reference_summaries()["mobilenet_v3_small_1.0_224"]


def _synthetic_figures(theta: np.ndarray) -> list[Figure]:
    features = reference_features()
    figures = []
    for model in ("mobilenet_v1_1.0_224", "mobilenet_v2_1.0_224", "mobilenet_v3_large_1.0_224",
                  "efficientnet_lite0_224", "efficientdet_lite0_320", "resnet50_224"):
        for precision in ("fp32", "int8"):
            for threads in (1, 4):
                ms = 1e3 * predict_seconds(theta, HW, features[model].with_precision(precision), threads)
                figures.append(Figure(model, precision, threads, ms, "synthetic"))
    return figures


def test_fit_recovers_figures_made_by_the_model() -> None:
    """Figures generated from known coefficients (away from the prior) are reproduced within 2 %."""
    truth = prior(HW) + np.array([0.4, -0.3, 0.2, -0.2, 0.1, 0.5, 0.3, -0.2, 0.1, 0.0, 0.2])
    assert len(truth) == len(PARAMS)
    figures = _synthetic_figures(truth)
    theta = fit(HW, figures, reference_features())
    for fig in figures:
        got = 1e3 * predict_seconds(theta, HW, reference_features()[fig.model].with_precision(fig.precision), fig.threads)
        assert got == pytest.approx(fig.ms, rel=0.02), fig


def test_leave_one_out_predicts_each_figure_without_it() -> None:
    clean = _synthetic_figures(prior(HW))
    assert all(abs(r["error"]) < 0.02 for r in leave_one_out(HW, clean, reference_features()))
    # a figure twice too slow cannot be predicted from the others: it stands out at about -50 %
    noisy = [Figure(clean[0].model, clean[0].precision, clean[0].threads, clean[0].ms * 2, "outlier")] + clean[1:]
    rows = leave_one_out(HW, noisy, reference_features())
    assert len(rows) == len(noisy)
    assert rows[0]["error"] == pytest.approx(-0.5, abs=0.1)
    assert abs(rows[0]["error"]) > max(abs(r["error"]) for r in rows[1:])


def test_more_threads_are_faster_and_int8_is_faster_than_fp32() -> None:
    cal = calibrate(load_target("rpi4"))
    summary = reference_summaries()["mobilenet_v2_1.0_224"]
    times = [estimate(summary, cal, threads)["ms"] for threads in (1, 2, 3, 4)]
    assert times == sorted(times, reverse=True)
    int8 = features_of(summary).with_precision("int8")
    fp32 = features_of(summary)
    assert predict_seconds(cal.theta, cal.hw, int8, 4) < predict_seconds(cal.theta, cal.hw, fp32, 4)


def test_breakdown_adds_up_to_the_estimate() -> None:
    cal = calibrate(load_target("rpi4"))
    summary = reference_summaries()["mobilenet_v2_1.0_224"]
    result = estimate(summary, cal, 4)
    assert sum(result["breakdown_ms"].values()) == pytest.approx(result["ms"], rel=1e-3)
    whole = 1e3 * predict_seconds(cal.theta, cal.hw, features_of(summary), 4)
    assert result["ms"] == pytest.approx(whole, rel=1e-3)
    assert result["low_ms"] < result["ms"] < result["high_ms"]
    assert "leave-one-out" in result["method"]


def test_every_packaged_target_loads_and_cites_its_figures() -> None:
    names = target_names()
    for required in ("rpi4", "rpi5", "android-arm64", "jetson-orin-nano", "x86-64", "host"):
        assert required in names
    for name in names:
        profile = load_target(name)
        for fig in profile.get("published", []):
            assert fig["source"].startswith("https://"), (name, fig)
            assert fig["precision"] in ("fp32", "int8")
        if name not in ("host", "jetson-orin-nano"):
            assert len(profile["published"]) >= 4, name
            assert calibrate(profile) is not None, name


def test_host_profile_is_this_machine() -> None:
    import os

    host = load_target("host")
    assert host["cpu"]["cores"] == os.cpu_count()
    assert host["runtime"]["threads"] == os.cpu_count()
    assert calibrate(host) is None


def test_user_profile_file(tmp_path: Path) -> None:
    text = Path(load_target.__code__.co_filename).parents[2].joinpath("targets", "rpi4.toml").read_text(encoding="utf-8")
    board = tmp_path / "my-board.toml"
    board.write_text(text.replace('name = "rpi4"', 'name = "my-board"'), encoding="utf-8")
    assert load_target(str(board))["name"] == "my-board"
    board.write_text(text.replace("clock_ghz = 1.5", "clock_ghz = -1.0"), encoding="utf-8")
    with pytest.raises(EdgekitError, match="clock_ghz"):
        load_target(str(board))


def test_budget_parsing_and_marks() -> None:
    from edgekit.bench.budgets import check_budgets, parse_budget_flags

    budgets = parse_budget_flags(["latency_ms=30", "size_mb=2", "accuracy=0.95", "agreement=0.995"])
    assert budgets == {"latency_ms": 30.0, "size_mb": 2.0, "accuracy": 0.95, "agreement": 0.995}
    artifact = {"bytes": 3_000_000, "accuracy": 0.97, "agreement": 0.99, "target_estimate": {"ms": 20.0}}
    marks = check_budgets(artifact, budgets)
    assert marks["latency_ms"]["passed"] and marks["accuracy"]["passed"]
    assert not marks["size_mb"]["passed"] and marks["size_mb"]["missed_by"] == pytest.approx(1.0)
    assert not marks["agreement"]["passed"] and marks["agreement"]["missed_by"] == pytest.approx(0.005)
    artifact["device_latency_ms"] = {"p50": 31.0, "p90": 33.0}  # a measured device beats the estimate
    assert not check_budgets(artifact, {"latency_ms": 30.0})["latency_ms"]["passed"]
    for bad in (["latency_ms"], ["latency=3"], ["size_mb=-1"], ["size_mb=nan"], ["accuracy=2"]):
        with pytest.raises(EdgekitError):
            parse_budget_flags(bad)
    assert math.isfinite(budgets["latency_ms"])
