"""The accuracy goal's fallback (issue 21): layers kept float in the INT8 files until they meet --max-drop.

The search is checked with made-up measurements; the whole fallback on a copy of the shared digits run whose
quantization was damaged in one layer (its weight range x1000: every int8 weight of that layer is 0), through
`edgekit compress --max-drop 1`, which re-exports and re-benchmarks that copy."""

from __future__ import annotations

import pytest

import json
import shutil
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file

from conftest import run_cli
from edgekit.widen.search import keep_until

DAMAGED = "features.1.conv.0.0"  # the first block's depthwise convolution: no residual path around it


def test_search_keeps_the_layer_that_gives_most_back_first() -> None:
    layers = ["a", "b", "c", "d", "e", "f", "g", "h"]  # by own SQNR, lowest first
    gains = {"c": 0.20, "a": 0.01}  # c repairs the file; a, the least faithful layer, barely matters
    score = lambda kept: 0.5 + sum(gains.get(layer, 0.0) for layer in kept)  # noqa: E731
    outcome = keep_until(layers, 0.69, check=score, rank=score, limit=2, trials=4)
    assert outcome.met and outcome.kept == ["c"] and outcome.score == 0.7
    assert outcome.trials == {"a": 0.51, "b": 0.5, "c": 0.7, "d": 0.5}


def test_search_leaves_out_a_layer_the_later_ones_made_unneeded() -> None:
    """b gives most back alone, but a and c together repair what b does and more: once they are float, b is
    not needed, and the file is the smaller for it."""
    def score(kept: list[str]) -> float:
        fixed = set(kept)
        return 0.5 + (0.1 if "b" in fixed or {"a", "c"} <= fixed else 0.0) + 0.06 * ("a" in fixed) + 0.06 * ("c" in fixed)

    outcome = keep_until(list("abcd"), 0.72, check=score, rank=score, limit=3, trials=4)
    assert outcome.met and outcome.kept == ["a", "c"] and outcome.score == pytest.approx(0.72)
    assert [s.kept for s in outcome.steps] == [["b"], ["b", "a"], ["b", "a", "c"], ["b", "c"], ["a", "c"]]


def test_search_stops_at_its_limit_and_says_the_goal_is_missed() -> None:
    score = lambda kept: 0.5 + 0.01 * len(kept)  # noqa: E731
    outcome = keep_until(list("abcdefgh"), 0.9, check=score, rank=score, limit=2, trials=3)
    assert not outcome.met and len(outcome.kept) == 2 and [s.kept for s in outcome.steps] == [outcome.kept[:1], outcome.kept]


def test_search_keeps_nothing_when_the_file_already_meets_the_goal() -> None:
    calls = []
    outcome = keep_until(list("abc"), 0.5, check=lambda kept: calls.append(kept) or 0.6, rank=lambda kept: 0 / 0,
                         limit=1, trials=3)
    assert outcome.met and outcome.kept == [] and calls == [[]]


def _damage_weight_range(run: Path, layer: str, factor: float) -> None:
    """Multiply the saved weight observer range of ``layer`` in the quantize stage's state: its int8 weights round
    to 0, as if its calibration had gone wrong."""
    from edgekit.quantize.saved_graph import load_prepared

    prepared = load_prepared(run / "distill", run / "quantize", 32)
    node = next(n for n in prepared.graph.nodes if n.op == "call_function" and str(n.target) == "aten.conv2d.default"
                and list(n.meta["nn_module_stack"].values())[-1][0] == layer)
    fake_quant = node.args[1].target
    path = run / "quantize" / "model.safetensors"
    state = load_file(str(path))
    for key in ("activation_post_process.min_val", "activation_post_process.max_val", "scale"):
        state[f"{fake_quant}.{key}"] = state[f"{fake_quant}.{key}"] * factor
    save_file(state, str(path))


def _tflite_float_ops(path: Path) -> list[str]:
    from ai_edge_litert import schema_py_generated as schema

    model = schema.ModelT.InitFromPackedBuf(bytearray(path.read_bytes()), 0)
    graph = model.subgraphs[0]
    names = {v: k for k, v in vars(schema.BuiltinOperator).items() if not k.startswith("_")}
    found = []
    for op in graph.operators:
        code = model.operatorCodes[op.opcodeIndex]
        name = names[max(code.builtinCode, code.deprecatedBuiltinCode)]
        if name in ("CONV_2D", "DEPTHWISE_CONV_2D", "FULLY_CONNECTED") and \
                graph.tensors[op.inputs[1]].type == schema.TensorType.FLOAT32:
            found.append(name)
    return found


def test_a_damaged_layer_is_kept_float_and_the_goal_met(e2e_run: Path, tmp_path: Path) -> None:
    run = tmp_path / "run"
    shutil.copytree(e2e_run / "run", run, ignore=shutil.ignore_patterns(".soft_labels", ".resume"))
    _damage_weight_range(run, DAMAGED, 1000.0)
    result = run_cli(["compress", "--config", str(e2e_run / "edgekit.toml"), "--out", str(run), "--max-drop", "1"],
                     cwd=e2e_run)
    assert result.returncode == 0, result.stderr[-4000:]
    assert "quantize: up to date" in result.stderr + result.stdout  # the damaged state is what gets exported
    record = json.loads((run / "artifacts" / "stage.json").read_text())["result"]["kept_float"]
    assert record["int8_before"] < record["goal"] - 0.3  # the damage is real: the fully integer file is broken
    assert record["met"] and record["kept_float"][0] == DAMAGED and len(record["kept_float"]) <= record["limit"]
    assert record["int8_after"] >= record["goal"]
    artifacts = run / "artifacts"
    # the damaged depthwise layer runs in float, and so does the 1x1 convolution reading its float output; the
    # .pte has it too (the run fails when a requested file does not build)
    assert _tflite_float_ops(artifacts / "model_int8.tflite")[:2] == ["DEPTHWISE_CONV_2D", "CONV_2D"]
    report = json.loads((run / "report.json").read_text())
    section = report["kept_float"]
    assert section["kept_float"] == record["kept_float"] and section["cost"]["bytes"] > section["cost"]["bytes_integer"]
    int8 = {a["name"]: a for a in report["artifacts"] if a.get("precision") == "int8" and a["status"] == "ok"}
    assert int8["model_int8.tflite"]["accuracy"] >= record["goal"] and int8["model_int8.onnx"]["accuracy"] >= record["goal"]
    assert "## Layers kept float" in (run / "report.md").read_text() and DAMAGED in (run / "report.md").read_text()
    layers = json.loads((run / "benchmark" / "layers.json").read_text())
    assert layers["kept_float"] == record["kept_float"]
    assert DAMAGED not in [la["layer"] for la in layers["layers"]]  # a float layer is not compared as an INT8 one


def test_a_goal_missed_at_the_limit_fails_the_run_with_the_score_reached() -> None:
    from edgekit.bench.kept_float_section import goal_failures

    section = {"metric": "accuracy", "goal": 0.5566, "met": False, "kept_float": ["a"] * 13, "layers": 54,
               "int8_after": 0.5446}
    artifacts = [{"name": "model_int8.tflite", "precision": "int8", "accuracy": 0.5431},
                 {"name": "model_fp32.tflite", "precision": "fp32", "accuracy": 0.5616}]
    lines = goal_failures(section, artifacts)
    assert lines[0] == "accuracy goal failed: model_int8.tflite accuracy 54.31 % < goal 55.66 %"
    assert "keeping 13 of 54 layers float" in lines[1] and "54.46 %" in lines[1] and len(lines) == 2
    assert goal_failures({**section, "met": True}, artifacts[1:]) == []
