"""The device latency estimate: graph walking, the cost model's fit, leave-one-out, and the target profiles."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest

from edgekit.estimate.target_profiles import load_target, target_names
from edgekit.errors import EdgekitError
from edgekit.estimate.cost_model import (FACTS, PARAMS, Figure, Hardware, fit, hardware_of, leave_one_network_out,
                                         leave_one_out, predict_seconds, prior, prior_values, unpack)
from edgekit.estimate.features import features_of
from edgekit.estimate.reference_costs import reference_features, reference_summaries
from edgekit.estimate.target_estimate import INT8_EXTRAPOLATED, calibrate, estimate, int8_extrapolation

HW = Hardware(clock_hz=1.5e9, cores=4, fp32_peak=8, int8_peak=16, cache_bytes=1 << 20)
ROOT = Path(__file__).resolve().parents[1]


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


# Coefficients away from the prior (within the hardware bounds: MACs per cycle at most the peak, which is the prior).
OFF_PRIOR = np.array([-0.5, -0.4, -0.6, -0.9, -0.5, 0.6, 0.8, -0.4, 0.3, -0.5, -0.3])
NETS = ("mobilenet_v1_1.0_224", "mobilenet_v2_1.0_224", "mobilenet_v3_large_1.0_224", "efficientnet_lite0_224",
        "efficientdet_lite0_320", "resnet50_224")


def _synthetic_figures(theta: np.ndarray) -> list[Figure]:
    features = reference_features()
    return [Figure(model, precision, threads,
                   1e3 * predict_seconds(theta, HW, features[model].with_precision(precision), threads), "synthetic")
            for model in NETS for precision in ("fp32", "int8") for threads in (1, 4)]


def _misses_of_the_prior(figures: list[Figure]) -> float:
    """Worst error of the prior alone on these figures: a fit that returned the prior would make it."""
    return max(abs(1e3 * predict_seconds(prior(HW), HW, reference_features()[f.model].with_precision(f.precision),
                                         f.threads) / f.ms - 1) for f in figures)


def test_fit_recovers_figures_made_off_the_prior() -> None:
    """Figures generated from known coefficients away from the prior (the prior misses them by over 30 %) are
    reproduced within 2 %: the fit moves to the data."""
    truth = prior(HW) + OFF_PRIOR
    assert len(truth) == len(PARAMS)
    figures = _synthetic_figures(truth)
    assert _misses_of_the_prior(figures) > 0.3
    theta = fit(HW, figures, reference_features())
    for fig in figures:
        got = 1e3 * predict_seconds(theta, HW, reference_features()[fig.model].with_precision(fig.precision), fig.threads)
        assert got == pytest.approx(fig.ms, rel=0.02), fig


def test_leave_one_out_predicts_each_figure_without_it() -> None:
    clean = _synthetic_figures(prior(HW) + OFF_PRIOR)
    assert _misses_of_the_prior(clean) > 0.3
    assert all(abs(r["error"]) < 0.03 for r in leave_one_out(HW, clean, reference_features()))
    # a figure twice too slow cannot be predicted from the others: it stands out at about -50 %
    noisy = [Figure(clean[0].model, clean[0].precision, clean[0].threads, clean[0].ms * 2, "outlier")] + clean[1:]
    rows = leave_one_out(HW, noisy, reference_features())
    assert len(rows) == len(noisy)
    assert rows[0]["error"] == pytest.approx(-0.5, abs=0.1)
    assert abs(rows[0]["error"]) > max(abs(r["error"]) for r in rows[1:])


def test_leave_one_network_out_leaves_every_figure_of_the_network_out() -> None:
    """A network whose four figures are all twice too slow is predicted by a fit to the other networks alone: at
    -50 % exactly (those are clean), which no fit that kept any of its figures would give; and each row is the
    prediction of a fit without the row's network."""
    clean = _synthetic_figures(prior(HW) + OFF_PRIOR)
    odd = "mobilenet_v2_1.0_224"
    noisy = [Figure(f.model, f.precision, f.threads, f.ms * (2 if f.model == odd else 1), "synthetic") for f in clean]
    by_network = leave_one_network_out(HW, noisy, reference_features())
    assert [r["model"] for r in by_network] == [f.model for f in noisy]
    assert all(r["error"] == pytest.approx(-0.5, abs=0.01) for r in by_network if r["model"] == odd)
    other = "resnet50_224"
    theta = fit(HW, [f for f in noisy if f.model != other], reference_features())
    for row, fig in zip(by_network, noisy):
        if fig.model == other:
            ms = 1e3 * predict_seconds(theta, HW, reference_features()[other].with_precision(fig.precision), fig.threads)
            assert row["estimate_ms"] == pytest.approx(ms, rel=1e-3)


def test_prior_is_the_hardware_facts_and_the_fit_cannot_beat_them() -> None:
    """The prior is computed from the profile's facts alone (a changed DRAM bandwidth moves the memory priors and
    nothing else), and no fitted MACs per cycle exceeds the peak the profile states."""
    profile = load_target("rpi4")
    est = profile["estimate"]
    values = prior_values(hardware_of(profile))
    assert values["a_fp32"] == est["fp32_macs_per_cycle"] and values["a_int8"] == est["int8_macs_per_cycle"]
    assert values["m"] == pytest.approx(est["dram_gb_s"] * 1e9 / (profile["cpu"]["clock_ghz"] * 1e9))
    assert values["d_fp32"] == pytest.approx(est["vector_bits"] / 32 * est["load_ports"] / 2)
    faster = prior_values(hardware_of({**profile, "estimate": {**est, "dram_gb_s": 2 * est["dram_gb_s"]}}))
    assert {k for k in values if faster[k] != values[k]} == {"b", "m", "w", "s"}
    for name in ("rpi4", "rpi5", "android-arm64", "x86-64"):
        profile = load_target(name)
        fitted = unpack(calibrate(profile).theta)
        assert fitted["a_fp32"] <= profile["estimate"]["fp32_macs_per_cycle"] * (1 + 1e-6), name
        assert fitted["a_int8"] <= profile["estimate"]["int8_macs_per_cycle"] * (1 + 1e-6), name


def test_every_prior_fact_has_its_source(tmp_path: Path) -> None:
    for name in target_names():
        profile = load_target(name)
        if not profile.get("published"):
            continue
        sources = profile["estimate"]["sources"]
        for key in FACTS:
            assert profile["estimate"][key] > 0 and len(sources[key]) > 20, (name, key)
            assert "http" in sources[key] or "publication" in sources[key], (name, key)
    text = (ROOT / "targets" / "rpi5.toml").read_text(encoding="utf-8")
    board = tmp_path / "board.toml"
    board.write_text("\n".join(line for line in text.splitlines() if not line.startswith("load_ports = \"")),
                     encoding="utf-8")
    with pytest.raises(EdgekitError, match="sources.load_ports"):
        load_target(str(board))


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
    assert "leave-one-out error by network" in result["method"]


def _names_the_network(model: str, text: str) -> bool:
    """Whether a figure's note or URL names its network: 'MobileNet v3 Large', 'mobilenet-v3-...-large',
    'efficientdet_lite0_320', 'efficientnet-fp32-lite0' all reduce to the same tokens."""
    flat = re.sub(r"[^a-z0-9]", "", text.lower())
    parts = [p for p in model.split("_") if not re.fullmatch(r"[0-9.]+", p)]
    tokens = [parts[0] + parts[1]] + parts[2:] if parts[1].startswith("v") else parts
    return all(t in flat for t in tokens)


def test_every_packaged_target_loads_and_cites_its_figures() -> None:
    """Every figure has its source URL and a note quoting where in the source it stands; the note or the URL names
    the figure's network, and no two figures of a target carry the same note."""
    names = target_names()
    for required in ("rpi4", "rpi5", "android-arm64", "jetson-orin-nano", "x86-64", "host"):
        assert required in names
    for name in names:
        profile = load_target(name)
        notes = [fig.get("note", "") for fig in profile.get("published", [])]
        assert len(set(notes)) == len(notes), name
        for fig in profile.get("published", []):
            assert re.fullmatch(r"https://[\w.-]+\.[a-z]{2,}/\S+", fig["source"]), (name, fig)
            assert len(fig.get("note", "")) > 20, (name, fig)
            assert _names_the_network(fig["model"], fig["note"] + " " + fig["source"]), (name, fig)
        if name not in ("host", "jetson-orin-nano"):
            assert len(profile["published"]) >= 4, name
            assert calibrate(profile) is not None, name
    assert not _names_the_network("mobilenet_v3_large_1.0_224", "row 'MobileNet v3 Small'")
    assert not _names_the_network("efficientdet_lite1_384", "efficientdet_lite0_320 FP32")


def test_bands_are_per_precision_and_int8_without_figures_is_marked_extrapolated() -> None:
    summary = reference_summaries()["mobilenet_v2_1.0_224"]
    rpi4 = calibrate(load_target("rpi4"))
    for precision in ("fp32", "int8"):
        result = estimate(dict(summary, precision=precision), rpi4, 4)
        own = max(abs(r["error"]) for r in rpi4.lono if r["precision"] == precision)
        assert result["band_pct"] == pytest.approx(100 * own, abs=0.05) and result["band_measured"]
    assert rpi4.band("fp32") != rpi4.band("int8")
    phone = calibrate(load_target("android-arm64"))
    assert phone.band("int8") is None
    fp32 = estimate(summary, phone, 4)
    int8 = estimate(dict(summary, precision="int8"), phone, 4)
    assert fp32["band_pct"] == pytest.approx(100 * phone.band("fp32"), abs=0.05)
    assert INT8_EXTRAPOLATED in int8["method"] and INT8_EXTRAPOLATED in int8["note"] and not int8["band_measured"]
    checks = int8_extrapolation()
    assert set(checks) >= {"rpi4", "rpi5"}
    assert int8["band_pct"] == pytest.approx(100 * max(c["worst_abs_error"] for c in checks.values()), abs=0.05)
    assert int8["band_pct"] != fp32["band_pct"]
    assert INT8_EXTRAPOLATED not in fp32["method"]


def _student_summary(tmp_path: Path) -> dict:
    """The digits student as edgekit exports it: MobileNetV2 width 0.35, 10 classes, 32 px (about 1.2 M MACs)."""
    import torch
    from torchvision import models

    from edgekit.estimate.onnx_graph import onnx_ops
    from edgekit.estimate.op_costs import summarize
    from edgekit.export.onnx_format import export_onnx

    export_onnx(models.mobilenet_v2(width_mult=0.35, num_classes=10).eval(), torch.zeros(1, 3, 32, 32),
                tmp_path / "student.onnx", {})
    return summarize(onnx_ops(tmp_path / "student.onnx"))


def test_a_raspberry_pi_5_is_not_slower_than_a_pi_4_at_any_size(tmp_path: Path) -> None:
    student = _student_summary(tmp_path)
    assert student["macs"] == pytest.approx(1.2e6, rel=0.05)
    big = reference_summaries()["mobilenet_v2_1.0_224"]
    rpi4, rpi5 = calibrate(load_target("rpi4")), calibrate(load_target("rpi5"))
    for summary in (student, big):
        for precision in ("fp32", "int8"):
            s = dict(summary, precision=precision)
            assert estimate(s, rpi5, 4)["ms"] <= estimate(s, rpi4, 4)["ms"], (summary["macs"], precision)
    # the student is far below every network fitted on rpi5: the estimate says so and names the measured check
    note = estimate(dict(student, precision="int8"), rpi5, 4)["note"]
    assert "not measured this far out" in note and "efficientdet_lite0_320" in note


def _qdq_conv_graph(path: Path, quantized: bool, integer: bool = False, fusable: bool = False) -> None:
    """input -> conv 3x3 (16 -> 32 channels, 16x16) -> clip, as plain float, as QDQ that onnxruntime cannot fuse
    (the Clip cuts negatives that the QuantizeLinear after it keeps, so Conv and Clip run in float), as QDQ it
    fuses (the grid after the Clip is ReLU6's range, as edgekit exports), or as one QLinearConv."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(0)
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 16, 16, 16])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 32, 16, 16])
    inits = [numpy_helper.from_array(np.float32(0.05), "s"), numpy_helper.from_array(np.int8(0), "z"),
             numpy_helper.from_array(np.uint8(128), "zu"), numpy_helper.from_array(np.int8(-128), "zr"),
             numpy_helper.from_array(np.float32(6.0 / 255), "sr"),
             numpy_helper.from_array(np.float32(0.0), "lo"), numpy_helper.from_array(np.float32(6.0), "hi")]
    conv = {"kernel_shape": [3, 3], "pads": [1, 1, 1, 1]}
    if integer:
        inits.append(numpy_helper.from_array(rng.integers(-8, 8, (32, 16, 3, 3)).astype(np.int8), "wq"))
        nodes = [helper.make_node("QuantizeLinear", ["x", "s", "z"], ["xq"]),
                 helper.make_node("QLinearConv", ["xq", "s", "z", "wq", "s", "z", "s", "z"], ["cq"], **conv),
                 helper.make_node("DequantizeLinear", ["cq", "s", "z"], ["y"])]
    elif quantized and fusable:
        inits.append(numpy_helper.from_array(rng.integers(-8, 8, (32, 16, 3, 3)).astype(np.int8), "wq"))
        nodes = [helper.make_node("QuantizeLinear", ["x", "s", "z"], ["xq"]),
                 helper.make_node("DequantizeLinear", ["xq", "s", "z"], ["xd"]),
                 helper.make_node("DequantizeLinear", ["wq", "s", "z"], ["wd"]),
                 helper.make_node("Conv", ["xd", "wd"], ["c"], **conv),
                 helper.make_node("Clip", ["c", "lo", "hi"], ["r"]),
                 helper.make_node("QuantizeLinear", ["r", "sr", "zr"], ["rq"]),  # the grid is ReLU6's range
                 helper.make_node("DequantizeLinear", ["rq", "sr", "zr"], ["y"])]
    elif quantized:
        inits.append(numpy_helper.from_array(rng.integers(-8, 8, (32, 16, 3, 3)).astype(np.int8), "wq"))
        nodes = [helper.make_node("QuantizeLinear", ["x", "s", "z"], ["xq"]),
                 helper.make_node("DequantizeLinear", ["xq", "s", "z"], ["xd"]),
                 helper.make_node("DequantizeLinear", ["wq", "s", "z"], ["wd"]),
                 helper.make_node("Conv", ["xd", "wd"], ["c"], **conv),
                 helper.make_node("Clip", ["c", "lo", "hi"], ["r"]),  # cuts the negatives the grid after it keeps
                 helper.make_node("QuantizeLinear", ["r", "s", "z"], ["rq"]),
                 helper.make_node("DequantizeLinear", ["rq", "s", "z"], ["y"])]
    else:
        inits.append(numpy_helper.from_array(rng.standard_normal((32, 16, 3, 3)).astype(np.float32), "w"))
        nodes = [helper.make_node("Conv", ["x", "w"], ["c"], **conv), helper.make_node("Clip", ["c", "lo", "hi"], ["y"])]
    model = helper.make_model(helper.make_graph(nodes, "g", [x], [y], inits), opset_imports=[helper.make_opsetid("", 13)])
    onnx.save(model, str(path))


def _runtime_ops(path: Path, tmp_path: Path) -> dict[str, int]:
    """The operators of the graph a plain onnxruntime session runs for ``path``."""
    from collections import Counter

    import onnx
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.optimized_model_filepath = str(tmp_path / f"{path.stem}.optimized.onnx")
    ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    return Counter(n.op_type for n in onnx.load(options.optimized_model_filepath).graph.node)


def test_an_int8_onnx_file_is_estimated_as_its_graph_holds_it(tmp_path: Path) -> None:
    """A QDQ file whose convolution stays float is costed as that float convolution plus its quantize/dequantize
    operators and the unfused Clip: slower than the same network in plain FP32, far slower than integer kernels."""
    from edgekit.estimate.onnx_graph import onnx_ops
    from edgekit.estimate.op_costs import QUANTIZE, summarize

    graphs = {}
    for name, quantized, integer, fusable in (("fp32", False, False, False), ("qdq", True, False, False),
                                              ("qlinear", True, True, False), ("fused", True, False, True)):
        _qdq_conv_graph(tmp_path / f"{name}.onnx", quantized, integer, fusable)
        graphs[name] = summarize(onnx_ops(tmp_path / f"{name}.onnx"))
    fp32, qdq, qlinear, fused = graphs["fp32"], graphs["qdq"], graphs["qlinear"], graphs["fused"]
    macs = 32 * 16 * 16 * 16 * 9
    assert fp32["precision"] == "fp32" and fp32["ops"] == 1  # Clip fused into the Conv
    assert qdq["precision"] == "int8" and qdq["float_macs"] == {"conv": macs}
    assert qdq["kinds"][QUANTIZE]["ops"] == 5  # x's pair, the weights' DequantizeLinear, the output's pair
    assert qlinear["precision"] == "int8" and "float_macs" not in qlinear and qlinear["kinds"]["conv"]["macs"] == macs
    # the unit onnxruntime fuses into one QLinearConv (ReLU6 folded): integer, only the edges' Q and DQ left;
    # onnxruntime itself agrees about both QDQ files
    assert _runtime_ops(tmp_path / "fused.onnx", tmp_path)["QLinearConv"] == 1
    assert _runtime_ops(tmp_path / "qdq.onnx", tmp_path)["QLinearConv"] == 0
    assert fused["precision"] == "int8" and "float_macs" not in fused and fused["kinds"]["conv"]["macs"] == macs
    assert fused["kinds"][QUANTIZE]["ops"] == 2 and "elementwise" not in fused["kinds"]
    cal = calibrate(load_target("rpi4"))
    ms = {name: estimate(g, cal, 4)["ms"] for name, g in graphs.items()}
    assert ms["qlinear"] < ms["fp32"] < ms["qdq"], ms
    assert ms["fused"] < ms["fp32"], ms
    assert "run in float" in estimate(qdq, cal, 4)["note"]


def test_host_profile_is_this_machine() -> None:
    import os

    host = load_target("host")
    assert host["cpu"]["cores"] == os.cpu_count()
    assert host["runtime"]["threads"] == os.cpu_count()
    assert calibrate(host) is None


def test_user_profile_file(tmp_path: Path) -> None:
    text = (ROOT / "targets" / "rpi4.toml").read_text(encoding="utf-8")
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


def test_targets_name_shows_both_leave_one_out_errors_per_figure(tmp_path: Path) -> None:
    from conftest import run_cli

    result = run_cli(["targets", "rpi5"], cwd=tmp_path, env_extra={"COLUMNS": "240"})
    assert result.returncode == 0, result.stderr
    cal = calibrate(load_target("rpi5"))
    rows = cal.rows()
    assert "Network out ms" in result.stdout and "Figure out ms" in result.stdout
    for r in rows:  # each figure's row carries its own two estimates
        cells = (f"{r['published_ms']:g}", f"{r['estimate_ms']:.1f}", f"{100 * r['error']:+.0f} %",
                 f"{r['network_out_estimate_ms']:.1f}", f"{100 * r['network_out_error']:+.0f} %")
        assert re.search(r"\s+│\s+".join(map(re.escape, cells)), result.stdout), cells
