"""Fingerprints: what a stage's output depends on, as one hex digest."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any


def file_sha256(path: Path, chunk: int = 1 << 20) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while block := handle.read(chunk):
            digest.update(block)
    return digest.hexdigest()


def path_digest(path: Path) -> str:
    """Content hash of a file, or of every file below a directory (relative names included)."""
    path = Path(path)
    if path.is_file():
        return file_sha256(path)
    digest = hashlib.sha256()
    for child in sorted(p for p in path.rglob("*") if p.is_file()):
        rel = child.relative_to(path).as_posix()
        if rel == "stage.json":
            continue  # holds timings; the content beside it is what matters
        digest.update(rel.encode())
        digest.update(file_sha256(child).encode())
    return digest.hexdigest()


def fingerprint(stage: str, version: str, params: dict[str, Any], inputs: dict[str, str]) -> str:
    """Hash of the stage name, its code version, its parameters and its inputs' content digests."""
    payload = json.dumps({"stage": stage, "version": version, "params": params, "inputs": inputs},
                         sort_keys=True, default=str)
    return hashlib.sha256(payload.encode()).hexdigest()
