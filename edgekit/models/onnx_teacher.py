"""A teacher handed over as ONNX: onnxruntime runs it to give the soft labels; no PyTorch code of it exists.

The teacher is frozen during distillation, so it needs no gradient: each batch goes through
onnxruntime and comes back as a tensor of logits. The model must take the images as the rest of the
chain prepares them (NCHW float32, --size square, the run's mean/std) and give one row of logits per image.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from edgekit.bench.ort_session import open_session
from edgekit.errors import EdgekitError


class OnnxTeacher(torch.nn.Module):
    opaque = True  # logits only: no inner layers for feature methods

    def __init__(self, path: Path) -> None:
        super().__init__()
        import onnx

        path = Path(path)
        self.source_path = path
        try:
            graph = onnx.load(str(path), load_external_data=False).graph
            self.session = open_session(path)
        except Exception as exc:  # noqa: BLE001 - onnx and onnxruntime fail on bad bytes in many ways
            raise EdgekitError(f"teacher file {path} is not a readable ONNX model ({exc.__class__.__name__})",
                               "pass an .onnx file exported with torch.onnx.export (or another exporter)") from None
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
