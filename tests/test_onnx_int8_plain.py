"""INT8 ONNX files are right and fully integer in a plain onnxruntime session, as an app opens them."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch
import torchvision
from onnx import numpy_helper

from edgekit.config import weight_range_default
from edgekit.export.onnx_format import export_onnx, own_int8_initializers
from edgekit.export.onnx_uint8_activations import uint8_activations
from edgekit.quantize import pt2e
from edgekit.runtime.ort_session import SESSION_CONFIG

MIN_AGREEMENT = 0.99  # top-1 of the file against the PyTorch INT8 graph, on the 360 test digits
# logit differences from PyTorch INT8 in output quantization steps (0.28): measured mean 0.46, largest 10.0
MEAN_LOGIT_STEPS = 1.0
MAX_LOGIT_STEPS = 16


def _output_scale(path: Path) -> float:
    """The scale of the last DequantizeLinear before the graph's output (the logits' quantization step)."""
    graph = onnx.load(str(path)).graph
    inits = {i.name: i for i in graph.initializer}
    producers = {o: n for n in graph.node for o in n.output}
    node = producers[graph.output[0].name]
    while node.op_type != "DequantizeLinear":
        node = producers[node.input[0]]
    return float(numpy_helper.to_array(inits[node.input[1]]))


def _int8_uses(path: Path) -> Counter:
    graph = onnx.load(str(path)).graph
    int8 = {t.name for t in graph.initializer if t.data_type == onnx.TensorProto.INT8}
    return Counter(name for node in graph.node for name in node.input if name in int8)


def _plain_session(path: Path, optimized: Path | None = None) -> ort.InferenceSession:
    options = ort.SessionOptions()  # the defaults; only where to write the graph onnxruntime runs
    if optimized is not None:
        options.optimized_model_filepath = str(optimized)
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


@pytest.fixture(scope="module")
def student_and_images() -> tuple[torch.nn.Module, torch.Tensor]:
    torch.manual_seed(0)
    return torchvision.models.mobilenet_v2(width_mult=0.25, num_classes=10).eval(), torch.rand(4, 3, 16, 16)


def _int8_graph(student: torch.nn.Module, x: torch.Tensor, weight_range: str = "full") -> torch.nn.Module:
    prepared = pt2e.prepare(student, x[:2], "ptq", weight_range)
    with torch.no_grad():
        prepared(torch.rand(16, 3, 16, 16))
    pt2e.to_eval(prepared)
    return pt2e.fold_weights(pt2e.convert(prepared))


@pytest.fixture(scope="module")
def int8_graph(student_and_images: tuple[torch.nn.Module, torch.Tensor]) -> tuple[torch.nn.Module, torch.Tensor]:
    student, x = student_and_images
    return _int8_graph(student, x), x


def test_a_plain_session_runs_the_int8_file_as_integer_kernels_throughout(
        int8_graph: tuple[torch.nn.Module, torch.Tensor], tmp_path: Path) -> None:
    """Every convolution a QLinearConv (ReLU6 folded away), every residual addition a QLinearAdd, no float
    convolution and no Clip; quantization only at the input, around the average pool and at the output."""
    graph, x = int8_graph
    path, optimized = tmp_path / "model_int8.onnx", tmp_path / "optimized.onnx"
    export_onnx(graph, x[:1], path, {}, int8=True)
    convolutions = sum(n.op_type == "Conv" for n in onnx.load(str(path)).graph.node)
    session = _plain_session(path, optimized)
    assert session.run(None, {session.get_inputs()[0].name: x.numpy()})[0].shape == (4, 10)
    ops = Counter(n.op_type for n in onnx.load(str(optimized)).graph.node)
    assert ops["QLinearConv"] == convolutions == 52, ops
    assert ops["QLinearAdd"] >= 10 and ops["Conv"] == ops["Clip"] == ops["Add"] == 0, ops
    assert ops["QuantizeLinear"] <= 2 and ops["DequantizeLinear"] <= 2, ops


def test_uint8_activations_hold_the_same_numbers(int8_graph: tuple[torch.nn.Module, torch.Tensor],
                                                 tmp_path: Path) -> None:
    """Q/DQ run as written (no fusion): the uint8 file computes exactly what the int8 one does."""
    graph, x = int8_graph
    program = torch.onnx.export(graph, (x[:1],), dynamo=True, opset_version=21, external_data=False)
    proto = program.model_proto
    own_int8_initializers(proto.graph)
    signed = tmp_path / "int8_activations.onnx"
    onnx.save_model(proto, str(signed))
    assert uint8_activations(proto) > 0
    onnx.checker.check_model(proto, full_check=True)
    unsigned = tmp_path / "uint8_activations.onnx"
    onnx.save_model(proto, str(unsigned))
    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    sessions = [ort.InferenceSession(str(p), options, providers=["CPUExecutionProvider"]) for p in (signed, unsigned)]
    outputs = [s.run(None, {s.get_inputs()[0].name: x[:1].numpy()})[0] for s in sessions]  # batch 1 here
    assert np.array_equal(outputs[0], outputs[1])
    with torch.no_grad():
        assert np.allclose(outputs[1], graph(x[:1]).numpy(), atol=1e-5)


def test_reduced_weight_range_is_seven_bits_and_chosen_for_x86_targets(
        student_and_images: tuple[torch.nn.Module, torch.Tensor], tmp_path: Path) -> None:
    student, x = student_and_images
    path = tmp_path / "reduced.onnx"
    export_onnx(_int8_graph(student, x, "reduced"), x[:1], path, {}, int8=True)
    graph = onnx.load(str(path)).graph
    weights = [numpy_helper.to_array(t) for t in graph.initializer if t.data_type == onnx.TensorProto.INT8]
    assert weights and max(int(np.abs(w.astype(np.int16)).max()) for w in weights) == 63
    assert weight_range_default("x86-64") == "reduced" and weight_range_default("rpi4") == "full"
    assert weight_range_default("jetson-orin-nano") == "full"


def test_a_trained_int8_onnx_in_a_plain_session_matches_the_pytorch_int8_graph(
        e2e_run: Path, e2e_test_images: tuple[np.ndarray, np.ndarray], tmp_path: Path) -> None:
    """The e2e run's INT8 file, in a plain session, against its PyTorch INT8 graph on the 360 held-out digits:
    the integer kernels only round differently from PyTorch's simulated INT8.

    The reference is the converted graph's logits on the test split, as the quantize stage saved them
    (test_end_to_end shows they equal the graph rebuilt from the run's weights)."""
    from edgekit.models.predictions import load_logits

    path = e2e_run / "run" / "artifacts" / "model_int8.onnx"
    session = _plain_session(path, tmp_path / "optimized_int8.onnx")
    # after QAT too (where a dropout once widened the last ReLU6's grid), every convolution is integer
    ops = Counter(n.op_type for n in onnx.load(str(tmp_path / "optimized_int8.onnx")).graph.node)
    convolutions = sum(n.op_type == "Conv" for n in onnx.load(str(path)).graph.node)
    assert ops["QLinearConv"] == convolutions and ops["Conv"] == ops["FusedConv"] == ops["Clip"] == 0, ops
    x_nhwc, labels = e2e_test_images
    x = np.ascontiguousarray(x_nhwc.transpose(0, 3, 1, 2))
    out = session.run(None, {session.get_inputs()[0].name: x})[0]
    ref = load_logits(e2e_run / "run" / "quantize").numpy()
    assert out.shape == ref.shape == (len(labels), 10)
    agreement = float(np.mean(out.argmax(1) == ref.argmax(1)))
    assert agreement >= MIN_AGREEMENT, f"top-1 agreement {agreement:.4f} on {len(labels)} test digits"
    # logits, not only top-1, in units of the output's quantization step: a rounding apart on average
    steps = np.abs(out - ref) / _output_scale(path)
    assert float(steps.mean()) <= MEAN_LOGIT_STEPS and float(steps.max()) <= MAX_LOGIT_STEPS, \
        f"logits differ by {steps.mean():.2f} output steps on average, {steps.max():.1f} at most"
    # and a trained network: it reads the digits (chance is 0.1)
    assert float(np.mean(out.argmax(1) == labels)) >= 0.9


def test_shared_int8_initializers_are_given_their_own_copies(
        int8_graph: tuple[torch.nn.Module, torch.Tensor], tmp_path: Path) -> None:
    """The exporter alone shares zero points between nodes; the copies remove every sharing, so that moving an
    activation's zero point to uint8 never moves a weight's."""
    graph, x = int8_graph
    program = torch.onnx.export(graph, (x[:1],), dynamo=True, opset_version=21, external_data=False)
    proto = program.model_proto
    path = tmp_path / "shared.onnx"
    onnx.save_model(proto, str(path))
    shared = {k: n for k, n in _int8_uses(path).items() if n > 1}
    assert shared, "the exporter no longer shares int8 initializers: this test needs another model"
    with pytest.raises(ValueError, match="shared between nodes"):
        uint8_activations(onnx.load(str(path)))
    copies = own_int8_initializers(proto.graph)
    assert copies == sum(n - 1 for n in shared.values())
    onnx.checker.check_model(proto)
    fixed = tmp_path / "fixed.onnx"
    onnx.save_model(proto, str(fixed))
    assert max(_int8_uses(fixed).values()) == 1


def test_preprocess_entries_need_no_session_config(e2e_run: Path) -> None:
    import json

    doc = json.loads((e2e_run / "run" / "artifacts" / "preprocess.json").read_text())
    for name, entry in doc["artifacts"].items():
        if name.endswith(".onnx"):
            assert entry["session_config"] == SESSION_CONFIG == {}
