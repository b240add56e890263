"""A teacher handed over as ONNX: onnxruntime runs it to give the soft labels; no PyTorch code of it exists.

The teacher is frozen during distillation, so it needs no gradient: each batch goes through
onnxruntime and comes back as a tensor of logits. The model must take the images as the rest of the
chain prepares them (NCHW float32, --size square, the run's mean/std) and give one row of logits per image.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import torch

from edgekit.runtime.ort_session import open_session
from edgekit.errors import EdgekitError


def _unreadable(path: Path, exc: Exception) -> EdgekitError:
    return EdgekitError(f"teacher file {path} is not a readable ONNX model ({exc.__class__.__name__})",
                        "pass an .onnx file exported with torch.onnx.export (or another exporter)")


def _tensors(message: Any) -> Iterator[Any]:
    """Every TensorProto anywhere in an ONNX message: initializers, sparse parts, attributes, subgraphs, functions."""
    from onnx import TensorProto

    if isinstance(message, TensorProto):
        yield message
        return
    for field, value in message.ListFields():
        if field.type != field.TYPE_MESSAGE:
            continue
        for item in ([value] if hasattr(value, "ListFields") else value):  # one message, or a repeated field
            yield from _tensors(item)


def check_external_data(proto: Any, path: Path) -> None:
    """Refuse a model whose external-data tensors name a file outside its folder, or one that is missing.

    onnxruntime reads ``location`` relative to the model's folder; ``../../x`` or an absolute path would make
    it read (and feed into the soft labels) any file the user can read."""
    from onnx import TensorProto

    folder = path.resolve().parent
    for tensor in _tensors(proto):
        if tensor.data_location != TensorProto.EXTERNAL:
            continue
        location = next((e.value for e in tensor.external_data if e.key == "location"), "")
        target = (folder / location).resolve()
        if not location or Path(location).is_absolute() or not target.is_relative_to(folder):
            raise EdgekitError(f"teacher file {path}: tensor '{tensor.name[:60]}' names external data "
                               f"'{location[:80]}' outside the model's folder",
                               "keep external data files next to the .onnx (or save the weights inside it)")
        if not target.is_file():
            raise EdgekitError(f"teacher file {path}: the external data file '{location[:80]}' of tensor "
                               f"'{tensor.name[:60]}' does not exist", "put it next to the .onnx, or save the weights inside it")


class OnnxTeacher(torch.nn.Module):
    opaque = True  # logits only: no inner layers for feature methods

    def __init__(self, path: Path) -> None:
        super().__init__()
        import onnx

        path = Path(path)
        self.source_path = path
        try:
            proto = onnx.load(str(path), load_external_data=False)
        except Exception as exc:  # noqa: BLE001 - onnx fails on bad bytes in many ways
            raise _unreadable(path, exc) from None
        check_external_data(proto, path)  # before onnxruntime opens any file the model names
        try:
            self.session = open_session(path)
        except Exception as exc:  # noqa: BLE001 - onnxruntime fails on bad models in many ways
            raise _unreadable(path, exc) from None
        graph = proto.graph
        inputs = self.session.get_inputs()
        if len(inputs) != 1:
            raise EdgekitError(f"teacher file {path} takes {len(inputs)} inputs",
                               "export the teacher with one input: a batch of NCHW images")
        self.input_name = inputs[0].name
        batch = inputs[0].shape[0] if inputs[0].shape else None
        self.fixed_batch = batch if isinstance(batch, int) else None
        self.parameter_count = int(sum(int(np.prod(t.dims)) for t in graph.initializer))
        self.training = False

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        images = x.detach().to(torch.float32).contiguous().numpy()
        if self.fixed_batch in (None, len(images)):
            return torch.from_numpy(self._run(images))
        step = self.fixed_batch  # a model exported with a fixed batch: feed it that many at a time, the last padded
        chunks = []
        for i in range(0, len(images), step):
            chunk = images[i:i + step]
            padded = np.concatenate([chunk, np.repeat(chunk[-1:], step - len(chunk), axis=0)]) if len(chunk) < step else chunk
            chunks.append(self._run(padded)[:len(chunk)])
        return torch.from_numpy(np.concatenate(chunks))

    def _run(self, images: np.ndarray) -> np.ndarray:
        return np.asarray(self.session.run(None, {self.input_name: images})[0], dtype=np.float32)

    def train(self, mode: bool = True) -> OnnxTeacher:
        self.training = False  # frozen: onnxruntime has no training mode
        return self


def copy_onnx_model(source: Path, target: Path) -> None:
    """Copy a (checked) ONNX model to ``target`` as one self-contained file.

    A model whose weights sit in external-data files next to it is rewritten with the weights inside, so the
    teacher stage's folder holds all the later stages read (a copy of the .onnx alone would point at files
    that are not there)."""
    import shutil

    import onnx

    proto = onnx.load(str(source), load_external_data=False)
    if not any(t.data_location == onnx.TensorProto.EXTERNAL for t in _tensors(proto)):
        shutil.copyfile(source, target)
        return
    check_external_data(proto, Path(source))
    whole = onnx.load(str(source))  # the external data, now known to lie in the model's folder
    try:
        onnx.save(whole, str(target))
    except ValueError as exc:  # protobuf's 2 GB limit
        raise EdgekitError(f"teacher file {source}: its weights do not fit in one ONNX file ({exc})",
                           "give the teacher as safetensors weights with --teacher-arch") from None

