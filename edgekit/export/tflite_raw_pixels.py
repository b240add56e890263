"""An INT8 ``.tflite`` that takes the image's raw 8-bit pixels: uint8 in, uint8 out, full-integer inside.

litert-torch writes a full-integer file with int8 input and output. Apps (MediaPipe Tasks among them, which
refuses int8) hand a classifier the ``uint8`` RGB bytes of the resized image. The file is changed the way
TensorFlow Lite's ``modify_model_interface`` does it: each int8 input gets a uint8 tensor in front and a
``QUANTIZE`` operator between them, each int8 output a ``QUANTIZE`` operator to a uint8 tensor behind it
(a float output, such as a detector's sigmoid scores, stays float).
The input's uint8 quantization is the preprocessing recipe itself, ``x = (pixel / 255 - mean) / std``:
scale ``1 / (255 std)`` and zero point ``255 mean``. With the default recipe (mean 0, std 1) that is the
int8 input's own scale, so the requantization is exactly ``pixel - 128`` and nothing is rounded twice. An
output keeps its scale; its zero point moves up by 128, so its dequantized values do not change.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from edgekit.errors import EdgekitError
from edgekit.export.tflite_flatbuffer import move_signature_tensors, read_model, write_model

# QUANTIZE reads uint8 and writes int8 (or the reverse) from operator version 2 on (TFLite's op_version.cc).
QUANTIZE_VERSION = 2


def raw_pixel_quantization(mean: list[float], std: list[float]) -> tuple[float, int]:
    """The uint8 input's (scale, zero point) that applies the recipe; one pair serves all channels only when
    they share one mean and one std. A mean that is not a whole number of pixel steps (0.5: 127.5) is rounded
    to the nearest one, half a pixel step: an input error of at most ``0.5 / (255 std)``, below the int8
    input's own rounding for a recipe whose range fills the int8 steps (mean = std = 0.5: half an int8 step
    either way, as an app that quantizes ``x`` itself meets at every pixel)."""
    if len(set(mean)) > 1 or len(set(std)) > 1:
        raise EdgekitError(f"a raw-pixel (uint8) INT8 input needs one mean and one std for all channels, got mean "
                           f"{list(mean)} and std {list(std)}",
                           "pass --io int8 for this recipe, or one mean and one std value for every channel")
    zero_point = round(255.0 * mean[0])
    if not 0 <= zero_point <= 255:
        raise EdgekitError(f"mean {mean[0]} puts the uint8 input's zero point at {255.0 * mean[0]:g}, outside 0..255",
                           "use a mean between 0 and 1 (the recipe is (pixel / 255 - mean) / std), or pass --io int8")
    return 1.0 / (255.0 * std[0]), int(zero_point)


def pixel_quantization(mean: list[float], std: list[float], int8_scale: float) -> tuple[float, int]:
    """``raw_pixel_quantization``, with the int8 input's own scale when the two agree to float rounding."""
    scale, zero_point = raw_pixel_quantization(mean, std)
    if abs(scale - int8_scale) <= 1e-6 * int8_scale:
        scale = int8_scale  # the same float the int8 input holds: an exact requantization
    return scale, zero_point


def _opcode(model: Any, schema: Any) -> int:
    for i, code in enumerate(model.operatorCodes):
        if max(code.builtinCode, code.deprecatedBuiltinCode) == schema.BuiltinOperator.QUANTIZE:
            code.version = max(code.version, QUANTIZE_VERSION)
            return i
    code = schema.OperatorCodeT()
    code.builtinCode = schema.BuiltinOperator.QUANTIZE
    code.deprecatedBuiltinCode = schema.BuiltinOperator.QUANTIZE
    code.version = QUANTIZE_VERSION
    model.operatorCodes.append(code)
    return len(model.operatorCodes) - 1


def _uint8_twin(schema: Any, tensor: Any, scale: float, zero_point: int) -> Any:
    twin = schema.TensorT()
    twin.shape, twin.shapeSignature, twin.hasRank = tensor.shape, tensor.shapeSignature, tensor.hasRank
    twin.type = schema.TensorType.UINT8
    twin.buffer = 0  # buffer 0 is the empty one: the tensor's data comes at run time
    twin.name = tensor.name
    twin.quantization = schema.QuantizationParametersT()
    twin.quantization.scale, twin.quantization.zeroPoint = [scale], [zero_point]
    tensor.name = (tensor.name.decode() if isinstance(tensor.name, bytes) else tensor.name) + "_int8"
    return twin


def _quantize_op(schema: Any, opcode: int, source: int, target: int) -> Any:
    op = schema.OperatorT()
    op.opcodeIndex, op.inputs, op.outputs = opcode, [source], [target]
    op.builtinOptionsType = schema.BuiltinOptions.QuantizeOptions
    op.builtinOptions = schema.QuantizeOptionsT()
    return op


def raw_pixel_io(path: Path, mean: list[float], std: list[float]) -> None:
    """Rewrite an int8-in, int8-out ``.tflite`` in place to uint8 in (raw pixels) and uint8 out."""
    from ai_edge_litert import schema_py_generated as schema

    model = read_model(path)
    if len(model.subgraphs) != 1:
        raise ValueError(f"expected one subgraph, found {len(model.subgraphs)}")
    graph = model.subgraphs[0]
    opcode = _opcode(model, schema)
    moved: dict[int, int] = {}  # old tensor index -> the uint8 tensor that replaces it at the graph's edge
    for position, index in enumerate(graph.inputs):
        tensor = graph.tensors[index]
        if tensor.type != schema.TensorType.INT8:
            raise ValueError(f"input {tensor.name!r} is not int8")
        scale, zero_point = pixel_quantization(mean, std, tensor.quantization.scale[0])
        graph.tensors.append(_uint8_twin(schema, tensor, scale, zero_point))
        moved[index] = graph.inputs[position] = len(graph.tensors) - 1
        graph.operators.insert(0, _quantize_op(schema, opcode, moved[index], index))
    for position, index in enumerate(graph.outputs):
        tensor = graph.tensors[index]
        if tensor.type != schema.TensorType.INT8:
            continue  # a float output (a detector's sigmoid scores) stays as it is
        q = tensor.quantization
        graph.tensors.append(_uint8_twin(schema, tensor, q.scale[0], q.zeroPoint[0] + 128))
        moved[index] = graph.outputs[position] = len(graph.tensors) - 1
        graph.operators.append(_quantize_op(schema, opcode, index, moved[index]))
    move_signature_tensors(model, moved)
    write_model(model, path)
