"""INT8 ONNX files open on onnxruntime's precise integer path (no U8S8 saturation on x86 without VNNI)."""

from __future__ import annotations

import warnings
from collections import Counter
from pathlib import Path

import numpy as np
import onnx
import pytest
import torch
import torchvision
from onnx import numpy_helper

from edgekit.runtime.ort_session import SESSION_CONFIG, open_session
from edgekit.export.onnx_format import export_onnx, own_int8_initializers
from edgekit.quantize import pt2e


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


def _precise_session(path: Path):  # noqa: ANN202 - an onnxruntime InferenceSession
    """open_session on a file whose int8 initializers are unshared, with the precise kernels and no fallback."""
    uses = _int8_uses(path)
    assert uses and max(uses.values()) == 1
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the fallback's warning would fail here
        session = open_session(path, threads=1)
    assert session.get_session_options().get_session_config_entry("session.x64quantprecision") == "1"
    return session


@pytest.fixture(scope="module")
def int8_graph() -> tuple[torch.nn.Module, torch.Tensor]:
    torch.manual_seed(0)
    student = torchvision.models.mobilenet_v2(width_mult=0.25, num_classes=10).eval()
    x = torch.rand(4, 3, 16, 16)
    prepared = pt2e.prepare(student, x[:2], "ptq")
    with torch.no_grad():
        prepared(torch.rand(16, 3, 16, 16))
    return pt2e.fold_weights(pt2e.convert(prepared)), x


def test_exported_int8_onnx_shares_no_int8_initializer_and_opens_precisely(
        int8_graph: tuple[torch.nn.Module, torch.Tensor], tmp_path: Path) -> None:
    graph, x = int8_graph
    path = tmp_path / "model_int8.onnx"
    export_onnx(graph, x[:1], path, {})
    session = _precise_session(path)
    assert session.run(None, {session.get_inputs()[0].name: x.numpy()})[0].shape == (4, 10)


def test_a_trained_int8_onnx_on_the_precise_path_matches_the_pytorch_int8_graph(
        e2e_run: Path, e2e_test_images: tuple[np.ndarray, np.ndarray]) -> None:
    """The e2e run's INT8 file, through open_session, against its PyTorch INT8 graph on the 360 held-out digits:
    the integer kernels only round differently from PyTorch's simulated INT8.

    The reference is the converted graph's logits on the test split, as the quantize stage saved them
    (test_end_to_end shows they equal the graph rebuilt from the run's weights)."""
    from edgekit.models.predictions import load_logits

    path = e2e_run / "run" / "artifacts" / "model_int8.onnx"
    session = _precise_session(path)
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
    """The exporter alone shares zero points between convolutions; the copies remove every sharing."""
    graph, x = int8_graph
    program = torch.onnx.export(graph, (x[:1],), dynamo=True, opset_version=21, external_data=False)
    proto = program.model_proto
    path = tmp_path / "shared.onnx"
    onnx.save_model(proto, str(path))
    shared = {k: n for k, n in _int8_uses(path).items() if n > 1}
    assert shared, "the exporter no longer shares int8 initializers: this test needs another model"
    copies = own_int8_initializers(proto.graph)
    assert copies == sum(n - 1 for n in shared.values())
    onnx.checker.check_model(proto)
    fixed = tmp_path / "fixed.onnx"
    onnx.save_model(proto, str(fixed))
    assert max(_int8_uses(fixed).values()) == 1


def test_a_file_the_precise_path_rejects_still_runs_with_a_warning(
        int8_graph: tuple[torch.nn.Module, torch.Tensor], tmp_path: Path) -> None:
    graph, x = int8_graph
    program = torch.onnx.export(graph, (x[:1],), dynamo=True, opset_version=21, external_data=False)
    path = tmp_path / "shared.onnx"
    onnx.save_model(program.model_proto, str(path))
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.log_severity_level = 4
    options.add_session_config_entry("session.x64quantprecision", "1")
    try:
        ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
        pytest.skip("onnxruntime's precise path loads shared initializers on this CPU (ARM, or x86 with VNNI)")
    except Exception:  # noqa: BLE001 - the rejection this test is about
        pass
    with pytest.warns(UserWarning, match="session.x64quantprecision"):
        session = open_session(path, threads=1)
    assert session.run(None, {session.get_inputs()[0].name: x[:1].numpy()})[0].shape == (1, 10)


def test_preprocess_entries_tell_apps_the_session_config(e2e_run: Path) -> None:
    import json

    doc = json.loads((e2e_run / "run" / "artifacts" / "preprocess.json").read_text())
    for name, entry in doc["artifacts"].items():
        if name.endswith(".onnx"):
            assert entry["session_config"] == SESSION_CONFIG
