"""Per-layer INT8 error (issue 21) on the shared digits run: benchmark/layers.json finds every quantized layer in
every .onnx and .tflite by its module path, and `edgekit inspect` points at a layer whose scale was damaged."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import flatbuffers
import numpy as np
import torch

from conftest import run_cli

DAMAGED = "features.6.conv.1.0"
MOBILENET_V2_LAYERS = 53  # 52 convolutions and the classifier


def _report(run: Path) -> dict:
    return json.loads((run / "benchmark" / "layers.json").read_text(encoding="utf-8"))


def test_layers_json_maps_every_layer_in_every_file(e2e_run: Path) -> None:
    report = _report(e2e_run / "run")
    assert [f["name"] for f in report["files"]] == ["PyTorch INT8 graph", "model_fp32.onnx", "model_int8.onnx",
                                                    "model_fp32.tflite", "model_int8.tflite"]
    paths = [layer["layer"] for layer in report["layers"]]
    assert len(paths) == MOBILENET_V2_LAYERS and paths[0] == "features.0.0" and paths[-1] == "classifier.1"
    for entry in report["files"]:
        assert [row["layer"] for row in entry["layers"]] == paths, entry["name"]
        if entry["precision"] == "fp32":  # a float file is its FP32 student, layer by layer, to rounding
            assert min(row["sqnr_fp32_db"] for row in entry["layers"]) > 80, entry["name"]
        else:  # an INT8 file follows the PyTorch INT8 graph: close at the first layer, near in direction at the end
            assert entry["error_enters"]["layer"] in paths
            if entry["name"] != "PyTorch INT8 graph":
                assert entry["layers"][0]["sqnr_int8_db"] > 40, entry["name"]
            assert entry["layers"][-1]["cosine_fp32"] > 0.95, entry["name"]
    assert {s["name"] for s in report["not_compared"]} == {"model_fp32.pte", "model_int8.pte"}


def _output_tensor(run: Path, layer: str) -> int:
    """The tensor of model_int8.tflite that holds ``layer``'s output, from the map the report uses."""
    from edgekit.layers.torch_points import int8_layers
    from edgekit.layers.tflite_points import tflite_layer_outputs
    from edgekit.quantize import pt2e
    from edgekit.quantize.saved_graph import load_prepared

    converted = pt2e.convert(load_prepared(run / "distill", run / "quantize", 32))
    entry = json.loads((run / "artifacts" / "preprocess.json").read_text())["artifacts"]["model_int8.tflite"]
    _, tensors = tflite_layer_outputs(run / "artifacts" / "model_int8.tflite", entry, int8_layers(converted),
                                      torch.zeros(1, 3, 32, 32).numpy())
    return tensors[layer]


def _scale_weights(path: Path, output_tensor: int, factor: float) -> None:
    """Multiply the weight scales of the op that writes ``output_tensor``: its outputs come out ``factor`` times too
    large (saturated), while every other layer computes right from what it is given."""
    from ai_edge_litert import schema_py_generated as schema

    model = schema.ModelT.InitFromPackedBuf(bytearray(path.read_bytes()), 0)
    graph = model.subgraphs[0]
    op = next(o for o in graph.operators if int(o.outputs[0]) == output_tensor)
    quantization = graph.tensors[int(op.inputs[1])].quantization
    quantization.scale = np.asarray(quantization.scale, dtype=np.float32) * factor
    builder = flatbuffers.Builder(1024)
    builder.Finish(model.Pack(builder), file_identifier=b"TFL3")
    path.write_bytes(builder.Output())


def test_inspect_points_at_a_damaged_layer(e2e_run: Path, tmp_path: Path) -> None:
    """One layer's weight scales multiplied by 50 in the INT8 .tflite: the error enters there, in that file only."""
    run = tmp_path / "run"
    shutil.copytree(e2e_run / "run", run, ignore=shutil.ignore_patterns(".soft_labels", ".resume", "*.pte"))
    _scale_weights(run / "artifacts" / "model_int8.tflite", _output_tensor(run, DAMAGED), 50.0)
    result = run_cli(["inspect", str(run), "--file", "model_int8.tflite", "--images", "16"], cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    assert f"model_int8.tflite: error enters at {DAMAGED} " in result.stdout, result.stdout[-3000:]
    assert f"{DAMAGED}  <- error enters" in result.stdout
    assert "PyTorch INT8 graph: error enters at " + DAMAGED not in result.stdout
    assert "16 images" in result.stderr


def test_a_model_the_report_cannot_read_is_still_measured(tmp_path: Path, monkeypatch) -> None:  # noqa: ANN001
    """The per-layer report is a diagnostic: when it fails, layers.json says why, a warning line says it, and the
    benchmark stage goes on (its measurements are not lost)."""
    import io
    from types import SimpleNamespace

    from rich.console import Console

    import edgekit.stages.benchmark as benchmark

    def fails(*_args: object) -> dict:
        raise RuntimeError("an operator no reader knows")

    monkeypatch.setattr(benchmark, "layer_report", fails)
    log = io.StringIO()
    ctx = SimpleNamespace(out=tmp_path, task=None, console=Console(file=log, width=200))
    benchmark.write_layer_report(ctx, tmp_path, torch.zeros(1, 3, 8, 8))
    layers = json.loads((tmp_path / "layers.json").read_text(encoding="utf-8"))
    assert layers["error"] == "RuntimeError: an operator no reader knows"
    assert "warning: no per-layer report: RuntimeError: an operator no reader knows" in log.getvalue()


def test_own_references_leave_the_files_values_alone() -> None:
    """A layer followed by an in-place op (MobileNetV3's hardswish_, a residual add_) must not have that op applied
    to the file's values the report then compares (it did: -6 dB against FP32 for layers that were at 25 dB)."""
    from edgekit.layers.torch_points import Layer, attach_fp32_points, own_references
    from edgekit.quantize import pt2e

    class Block(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.conv = torch.nn.Conv2d(3, 4, 3, padding=1)
            self.act = torch.nn.Hardswish(inplace=True)
            self.proj = torch.nn.Conv2d(4, 4, 1)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            y = self.act(self.conv(x))
            return self.proj(y).add_(y)

    torch.manual_seed(0)
    x = torch.randn(2, 3, 8, 8)
    graph = pt2e.capture(Block(), x, train=False)
    layers = [Layer(path, "conv", np.zeros(1), [], "", 1.0, 0) for path in ("conv", "proj")]
    attach_fp32_points(graph, layers)
    values = {"conv": np.full((2, 4, 8, 8), -1.0, np.float32), "proj": np.full((2, 4, 8, 8), 2.0, np.float32)}
    before = {k: v.copy() for k, v in values.items()}
    own_references(graph, layers, values, x)
    for path in values:
        assert np.array_equal(values[path], before[path]), path
