"""The PT2E INT8 recipe (DESIGN.md section 6): capture, prepare, convert, and rebuild from safetensors.

Weights are per-channel symmetric int8 (7-bit for x86 targets: ``weight_range``), activations per-tensor
int8 (XNNPACK's scheme, which LiteRT and onnxruntime both run as integer kernels; the ONNX file stores the
same activations as uint8, export/onnx_uint8_activations.py). A prepared graph's state (weights, fake-quant and
observer buffers) is saved as safetensors; ``rebuild_prepared`` recreates the same graph from the FP32
student and loads it back, so no pickle is ever written or read.
"""

from __future__ import annotations

import copy
import logging
import warnings
from typing import Literal

import torch
from torch.export import Dim

from edgekit.pipeline.tensor_files import with_module_versions
from edgekit.quantize.constant_channels import zero_constant_channels
from edgekit.quantize.conv_kinds import present_conv_kinds_only
from edgekit.quantize.fused_clamp import with_fused_clamps
from edgekit.quantize.one_scale_per_tensor import without_requantization

Method = Literal["qat", "ptq"]
WeightRange = Literal["full", "reduced"]
WEIGHT_LIMITS = {"full": 127, "reduced": 63}  # symmetric int8 weights in [-limit, limit]

# torchao registers an Enum with pytree at import, which torch 2.14 answers with a deprecation warning
# on every run; it says nothing about the user's model.
logging.getLogger("torch.utils._pytree").setLevel(logging.ERROR)


def xnnpack_quantizer(is_qat: bool, weight_range: WeightRange = "full"):  # noqa: ANN201 - the class is private to torchao
    """The one place that imports torchao's private XNNPACK quantizer."""
    from torchao.testing.pt2e._xnnpack_quantizer import XNNPACKQuantizer, get_symmetric_quantization_config

    warnings.filterwarnings("ignore", message="XNNPACKQuantizer is deprecated")
    quantizer = XNNPACKQuantizer().set_global(get_symmetric_quantization_config(
        is_per_channel=True, is_qat=is_qat, weight_qmin=-WEIGHT_LIMITS[weight_range], weight_qmax=WEIGHT_LIMITS[weight_range]))
    # ReLU6 observed after the clamp, not before (fused_clamp.py): else onnxruntime keeps float Clips and convs;
    # then conv and linear inputs share their producer's scale: else LiteRT misreads the classifier's bias
    # (one_scale_per_tensor.py). The second pass reads the observers the first one placed.
    return without_requantization(with_fused_clamps(quantizer))


def capture(model: torch.nn.Module, example: torch.Tensor, *, train: bool) -> torch.nn.Module:
    """torch.export with a dynamic batch dimension, in training or inference form."""
    model = model.train() if train else model.eval()
    batch = Dim("batch", min=1, max=4096)
    return torch.export.export(model, (example,), dynamic_shapes=({0: batch},)).module()


def prepare(student: torch.nn.Module, example: torch.Tensor, method: Method,
            weight_range: WeightRange = "full") -> torch.nn.Module:
    from torchao.quantization.pt2e.quantize_pt2e import prepare_pt2e, prepare_qat_pt2e

    student = copy.deepcopy(student)
    zero_constant_channels(student)  # else TFLite's int32 bias of such a channel is coarse (constant_channels.py)
    if method == "qat":
        without_dropout(student)
        with present_conv_kinds_only():
            return prepare_qat_pt2e(capture(student, example, train=True), xnnpack_quantizer(True, weight_range))
    return prepare_pt2e(capture(student, example, train=False), xnnpack_quantizer(False, weight_range))


def to_train(prepared: torch.nn.Module) -> None:
    from torchao.quantization.pt2e import move_exported_model_to_train

    move_exported_model_to_train(prepared)


def to_eval(prepared: torch.nn.Module) -> None:
    from torchao.quantization.pt2e import move_exported_model_to_eval

    move_exported_model_to_eval(prepared)


def without_dropout(model: torch.nn.Module) -> None:
    """Replace every dropout by an identity, in place, before QAT.

    torchao's ``move_exported_model_to_train`` rewrites each dropout of a captured graph as ``dropout(p=0.5)``,
    whatever rate the model had, and the observer of the tensor after it sees the kept values doubled.
    MobileNetV2's classifier input shares the last ReLU6's observer (one_scale_per_tensor.py), so QAT widened
    that grid to 6.8 where inference never passes 6: the grid was 13 % coarser than it needed, and onnxruntime
    could not fold the last ReLU6 (its grid kept values the clamp cuts), which left that convolution in float.
    QAT is a short fine-tuning of a trained student; without dropout its observers see what inference sees.
    """
    for module in list(model.modules()):
        for child_name, child in list(module.named_children()):
            if isinstance(child, torch.nn.modules.dropout._DropoutNd):
                setattr(module, child_name, torch.nn.Identity())


def rebuild_prepared(student: torch.nn.Module, example: torch.Tensor, method: Method,
                     state: dict[str, torch.Tensor], weight_range: WeightRange = "full") -> torch.nn.Module:
    prepared = prepare(student, example, method, weight_range)
    prepared.load_state_dict(with_module_versions(state, prepared), strict=True)
    to_eval(prepared)
    return prepared


def convert(prepared: torch.nn.Module) -> torch.nn.Module:
    """The integer model with Q/DQ around float weights (``fold_quantize=False``).

    It feeds LiteRT and is the PyTorch INT8 reference. Conversion re-traces the conv-bn patterns of every conv
    kind the graph has (seconds), so it is done once; ``fold_weights`` derives the ONNX graph from it.
    """
    from torchao.quantization.pt2e.quantize_pt2e import convert_pt2e

    with present_conv_kinds_only():  # conv-bn folding traces patterns of absent conv kinds otherwise (conv_kinds.py)
        converted = convert_pt2e(copy.deepcopy(prepared), fold_quantize=False)
    converted.training = False  # .eval() raises on a converted PT2E graph
    return converted


def fold_weights(converted: torch.nn.Module) -> torch.nn.Module:
    """The same graph with weights stored as int8 (what ``convert_pt2e(fold_quantize=True)`` does last)."""
    from torchao.quantization.pt2e.constant_fold import constant_fold
    from torchao.quantization.pt2e.quantize_pt2e import _quant_node_constraint

    folded = copy.deepcopy(converted)
    constant_fold(folded, _quant_node_constraint)
    folded.training = False
    return folded
