"""Trial INT8 .tflite files with some layers kept float, built and scored the way the export stage builds them
and the benchmark scores them: LiteRT on the file, the task's metric on a split."""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import torch

from edgekit.estimate.onnx_graph import graph_ops
from edgekit.estimate.op_costs import summarize
from edgekit.export.formats import FileJob, write_file
from edgekit.layers.metrics import sqnr_db
from edgekit.layers.torch_points import Layer, attach_fp32_points, int8_layers, own_references
from edgekit.quantize import pt2e
from edgekit.quantize.keep_float import keep_float
from edgekit.registry import FORMATS, load
from edgekit.runtime.runners import open_runner

TFLITE_INT8 = {"name": "model_int8.tflite", "format": "tflite", "precision": "int8"}


class TrialFiles:
    """Builds ``model_int8.tflite`` with a given set of layers float, in a scratch folder, and scores it."""

    def __init__(self, ctx: Any, converted: torch.nn.Module, student: torch.nn.Module) -> None:
        self.ctx, self.task, self.converted = ctx, ctx.task, converted
        self.folder = Path(tempfile.mkdtemp(prefix="edgekit-widen-"))
        self.example = ctx.eval_images()[:1]
        self.student = student
        self.integer_file: dict[str, Any] = {}  # bytes and operator summary of the fully integer .tflite
        self._files: dict[tuple[str, ...], tuple[Path, dict[str, Any]]] = {}
        self._scores: dict[tuple[str, tuple[str, ...]], float] = {}

    @property
    def built(self) -> int:
        return len(self._files)

    def build(self, kept: list[str]) -> tuple[Path, dict[str, Any]]:
        """The file with ``kept`` float and its I/O entry, converted once per set of layers."""
        key = tuple(sorted(kept))
        if key not in self._files:
            path = self.folder / f"trial_{len(self._files)}.tflite"
            graph = keep_float(self.converted, kept) if kept else self.converted
            job = FileJob(path, self.example, self.ctx.spec, list(self.task.output_names), True, self.ctx.settings.io,
                          {}, float_layers=bool(kept))
            write_file(TFLITE_INT8, {"int8": graph}, job)
            self._files[key] = path, self.task.io_entry(path, self.ctx.data.classes)
        return self._files[key]

    def score(self, split: str, kept: list[str]) -> float:
        """The task's metric (0..1) of the file with ``kept`` float, on ``split``, in LiteRT."""
        key = (split, tuple(sorted(kept)))
        if key not in self._scores:
            path, entry = self.build(kept)
            outputs = open_runner(path, entry, threads=os.cpu_count()).outputs(self.ctx.images(split).numpy())
            self._scores[key] = self.task.score(self.ctx.data, split, outputs)[self.task.metric.key]
        return self._scores[key]

    def layers_by_error(self, images: torch.Tensor) -> list[tuple[str, float]]:
        """Every quantized layer and the SQNR of the error it adds itself in the fully integer file, lowest first."""
        layers: list[Layer] = int8_layers(self.converted)
        fp32_graph = pt2e.capture(self.student, images[:2], train=False)
        attach_fp32_points(fp32_graph, layers)
        path, entry = self.build([])
        values, _ = load(FORMATS["tflite"]["layers"])(path, entry, layers, images.numpy())
        own = own_references(fp32_graph, layers, values, images)
        self.integer_file = {"bytes": path.stat().st_size, "graph": summarize(graph_ops(path))}
        ranked = [(layer.path, float(sqnr_db(own[layer.path], values[layer.path]))) for layer in layers]
        return sorted(ranked, key=lambda item: item[1])

    def close(self) -> None:
        shutil.rmtree(self.folder, ignore_errors=True)


def sample(images: torch.Tensor, count: int, seed: int) -> torch.Tensor:
    order = np.random.default_rng(seed).permutation(len(images))[:count]
    return images[torch.as_tensor(np.sort(order))]
