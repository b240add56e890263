"""The converted INT8 graph, kept in memory from the quantize stage to the export stage of one process.

Converting a prepared PT2E graph is slow (27 s for the TinyDetector student, plus 12 s to rebuild the prepared
graph from its weights), and within one ``compress`` the export stage would redo exactly what the quantize
stage just did. Entries are keyed by the content of the saved prepared weights, so a stale entry can never
be returned; in a new process (``edgekit export`` alone) the graph is rebuilt from the files as before.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import torch

from edgekit.models.checkpoint import WEIGHTS
from edgekit.pipeline.fingerprint import file_sha256

_CONVERTED: dict[str, torch.nn.Module] = {}


def remember(quantize_folder: Path, converted: torch.nn.Module) -> None:
    """Call after the prepared weights are written to ``quantize_folder``."""
    _CONVERTED.clear()  # one run at a time: no need to hold older graphs
    _CONVERTED[file_sha256(Path(quantize_folder) / WEIGHTS)] = converted


def converted_graph(quantize_folder: Path, build: Callable[[], torch.nn.Module]) -> torch.nn.Module:
    """The remembered graph for these weights, else ``build()`` (rebuild and convert from the files)."""
    key = file_sha256(Path(quantize_folder) / WEIGHTS)
    if key not in _CONVERTED:
        _CONVERTED[key] = build()
    return _CONVERTED[key]
