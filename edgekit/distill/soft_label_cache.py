"""The soft-label cache: the teacher's side of the loss for every (epoch, image), computed once, on disk.

The teacher's forward pass is most of a distillation step's cost. Augmentation here is a function of
(augmentation seed, epoch, image) alone (train_loop.epoch_views), so the teacher sees exactly the same
input for a given epoch and image in every run that shares the seed: whatever the batch size, the order,
the method's T and alpha, or the stage (QAT reuses the distill stage's first epochs). Its output for that
input can be kept and reused.

On disk: ``<root>/<key>/epoch-<e>.<part>.safetensors``, one file per epoch and part (``logits``; each
feature term's reduced teacher features, named by the term), each a tensor with one row per training
image, written atomically at the end of the epoch that computed it. ``<key>`` is a digest of everything
the values depend on: the teacher's weights, the training images, the augmentation (seed, flips, shift)
and the torch version; a different teacher or data set never reads another's entries.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import torch
from safetensors.torch import load_file

from edgekit.pipeline.tensor_files import write_safetensors
from edgekit.pipeline.atomic import write_text_atomic

FORMAT = "edgekit.soft-labels/1"


def part_name(key: str) -> str:
    """A feature key (``at:layer1``) as a file-name part."""
    return "".join(c if c.isalnum() or c in "-_" else "_" for c in key)


class SoftLabelCache:
    """Per-epoch tables of the teacher's outputs for a fixed teacher, data set and augmentation."""

    def __init__(self, root: Path, identity: dict[str, str], rows: int, limit_bytes: int | None = None) -> None:
        self.identity = {**identity, "torch": torch.__version__, "format": FORMAT, "rows": str(rows)}
        self.key = hashlib.sha256(json.dumps(self.identity, sort_keys=True).encode()).hexdigest()[:20]
        self.folder = Path(root) / self.key
        self.rows = rows
        self.limit_bytes = limit_bytes
        self.hits = 0
        self.misses = 0

    def _path(self, epoch: int, part: str) -> Path:
        return self.folder / f"epoch-{epoch:04d}.{part_name(part)}.safetensors"

    def load(self, epoch: int, parts: list[str]) -> dict[str, torch.Tensor] | None:
        """Every part of this epoch, or None when any is missing or unreadable (then the teacher runs)."""
        out: dict[str, torch.Tensor] = {}
        for part in parts:
            try:
                table = load_file(str(self._path(epoch, part)))["rows"]
            except Exception:  # noqa: BLE001 - missing, torn or foreign file: recompute it
                self.misses += 1
                return None
            if table.shape[0] != self.rows:
                self.misses += 1
                return None
            out[part] = table
        self.hits += 1
        return out

    def save(self, epoch: int, tables: dict[str, torch.Tensor]) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        meta = self.folder / "cache.json"
        if not meta.is_file():
            write_text_atomic(meta, json.dumps(self.identity, indent=2, sort_keys=True) + "\n")
        for part, table in tables.items():
            final = self._path(epoch, part)
            tmp = final.with_name(f".{final.name}.tmp-{os.getpid()}")
            try:
                write_safetensors({"rows": table}, tmp)
                os.replace(tmp, final)
            finally:
                tmp.unlink(missing_ok=True)

    def bytes_on_disk(self) -> int:
        return sum(p.stat().st_size for p in self.folder.glob("*.safetensors")) if self.folder.is_dir() else 0
