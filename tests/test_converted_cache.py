"""The in-process cache of converted INT8 graphs returns a graph only for the exact weights it was made from."""

from __future__ import annotations

from pathlib import Path

import torch

from edgekit.models.checkpoint import WEIGHTS
from edgekit.quantize.converted_cache import converted_graph, remember


def test_cache_hits_only_for_identical_weights(tmp_path: Path) -> None:
    first, second = tmp_path / "a", tmp_path / "b"
    for folder, content in ((first, b"weights one"), (second, b"weights two")):
        folder.mkdir()
        (folder / WEIGHTS).write_bytes(content)
    made = torch.nn.Identity()
    remember(first, made)
    assert converted_graph(first, lambda: torch.nn.ReLU()) is made
    built = converted_graph(second, lambda: torch.nn.ReLU())
    assert isinstance(built, torch.nn.ReLU), "other weights must be rebuilt, never served from the cache"
    (first / WEIGHTS).write_bytes(b"weights one, changed")
    assert isinstance(converted_graph(first, lambda: torch.nn.Tanh()), torch.nn.Tanh)
