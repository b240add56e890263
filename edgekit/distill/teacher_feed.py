"""Where a training loop gets the teacher's side of the loss: the soft-label cache when it holds the
epoch, otherwise the teacher itself (whose outputs then fill the cache for the next run)."""

from __future__ import annotations

import sys
from collections.abc import Callable

import torch

from edgekit.distill.hooks import FeatureTap, Outputs
from edgekit.distill.soft_label_cache import SoftLabelCache
from edgekit.pipeline.distributed import from_main, world


class TeacherFeed:
    def __init__(self, teacher: Callable[[torch.Tensor], torch.Tensor], loss: object,
                 cache: SoftLabelCache | None, example: torch.Tensor, rows: int, epochs: int, stage: str,
                 device: torch.device | None = None) -> None:
        self.teacher = teacher
        self.device = torch.device("cpu") if device is None else device
        # a torch teacher runs where the student trains (train_loop placed it); onnxruntime and exported
        # programs on the CPU
        self.teacher_device = self.device if runs_on_device(teacher) else torch.device("cpu")
        self.teacher_side = getattr(loss, "teacher_side", lambda out: out)
        layers = list(getattr(loss, "teacher_layers", []))
        embedding = bool(getattr(loss, "embedding", False))
        self.tap = FeatureTap(teacher, layers, "teacher", embedding) if layers or embedding else None
        self.cache = cache
        self.rows = rows
        probe = self._live(example)
        self.parts = ["logits", *probe.features]
        self.stage = stage
        if cache is not None and cache.limit_bytes is not None:
            row_bytes = sum(v[0].numel() * v.element_size() for v in (probe.logits, *probe.features.values()))
            needed = row_bytes * rows * epochs
            if needed > cache.limit_bytes:
                say(f"{stage}: soft-label cache off: it would need {needed / 2**20:,.0f} MiB, over soft_label_cache_mb "
                    f"= {cache.limit_bytes // 2**20}; the teacher runs at every step")
                self.cache = None
        self.table: dict[str, torch.Tensor] | None = None
        self.filling: dict[str, torch.Tensor] | None = None
        self.filled: torch.Tensor | None = None

    @torch.no_grad()
    def _live(self, xb: torch.Tensor) -> Outputs:
        xb = xb.to(self.teacher_device)
        raw = self.tap.run(xb) if self.tap is not None else Outputs(self.teacher(xb))
        out = self.teacher_side(raw)
        if self.teacher_device == self.device:
            return out
        return Outputs(out.logits.to(self.device), {k: v.to(self.device) for k, v in out.features.items()})

    def start_epoch(self, epoch: int) -> None:
        self.table = self.cache.load(epoch, self.parts) if self.cache is not None else None
        self.filling = {} if self.cache is not None and self.table is None else None
        self.filled = torch.zeros(self.rows, dtype=torch.bool)

    def __call__(self, xb: torch.Tensor, idx: torch.Tensor, own: torch.Tensor | None = None) -> Outputs:
        """The teacher's side for images ``idx``; ``own`` marks the ones this process records (of several
        processes, each image is recorded by exactly one)."""
        if self.table is not None:
            return Outputs(self.table["logits"][idx].to(self.device),
                           {k: self.table[k][idx].to(self.device) for k in self.parts[1:]})
        out = self._live(xb)
        if self.filling is not None:
            keep = idx if own is None else idx[own]
            for part, value in (("logits", out.logits), *out.features.items()):
                if part not in self.filling:
                    self.filling[part] = torch.zeros((self.rows, *value.shape[1:]), dtype=value.dtype)
                self.filling[part][keep] = (value if own is None else value[own.to(value.device)]).detach().cpu()
            self.filled[keep] = True
        return out

    def end_epoch(self, epoch: int, combine: Callable[[torch.Tensor], torch.Tensor] | None = None) -> None:
        """Write the epoch's tables once every row was seen. ``combine`` merges the rows that other
        processes computed (a sum: each row is non-zero on one process only) before rank 0 writes."""
        if self.filling is None or self.cache is None:
            return
        filled = self.filled
        if combine is not None:
            filled = combine(filled.to(torch.int32)) > 0
            self.filling = {k: combine(v) for k, v in self.filling.items()}
        if bool(filled.all()) and set(self.filling) == set(self.parts) and world().main:
            try:
                self.cache.save(epoch, self.filling)
            except OSError as exc:  # a full disk costs the cache, not the run: the teacher runs from here on
                say(f"{self.stage}: soft-label cache off: writing {self.cache.folder} failed ({exc.strerror}); "
                    "the teacher runs at every step")
                self.cache = None
        if combine is not None and not from_main(int(self.cache is not None)):
            self.cache = None  # rank 0 could not write: all go on without the cache, in step
        self.filling = None

    def close(self) -> None:
        if self.tap is not None:
            self.tap.close()
        if self.cache is not None and self.cache.hits + self.cache.misses:
            say(f"{self.stage}: soft labels of {self.cache.hits} epoch(s) read from the cache, "
                f"{self.cache.misses} computed and cached ({self.cache.folder})")


def runs_on_device(teacher: object) -> bool:
    """Whether the teacher moves to the training device: a torch module, not an onnxruntime/exported wrapper."""
    return isinstance(teacher, torch.nn.Module) and not getattr(teacher, "opaque", False)


def say(line: str) -> None:
    print(line, file=sys.stderr, flush=True)
