"""Shared helpers: the real ``edgekit`` console script, and tiny ImageFolder trees made with PIL."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

# The console script installed next to the interpreter running the tests (cli.py has no __main__ guard).
EDGEKIT = Path(sys.executable).parent / "edgekit"


@dataclass
class CliResult:
    args: list[str]
    returncode: int
    stdout: str
    stderr: str
    seconds: float


def run_cli(args: list[str], cwd: Path, timeout: float = 600) -> CliResult:
    env = dict(os.environ)
    # One torch thread per process: on a shared 2-core machine, two OpenMP pools spinning against
    # each other made training 4x slower than a single thread.
    env.setdefault("OMP_NUM_THREADS", "1")
    started = time.perf_counter()
    proc = subprocess.run([str(EDGEKIT), *args], cwd=cwd, capture_output=True, text=True, timeout=timeout, env=env)
    return CliResult([str(a) for a in args], proc.returncode, proc.stdout, proc.stderr, time.perf_counter() - started)


def write_png(path: Path, seed: int, size: int = 8) -> None:
    rng = np.random.default_rng(seed)
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(rng.integers(0, 256, (size, size, 3), dtype=np.uint8), "RGB").save(path)


def make_image_folder(root: Path, splits: dict[str, list[str]], per_class: int = 3) -> Path:
    """``root/<split>/<class>/<i>.png``, a few random 8x8 RGB images per class."""
    seed = 0
    for split, classes in splits.items():
        for name in classes:
            for i in range(per_class):
                write_png(root / split / name / f"{i}.png", seed)
                seed += 1
    root.mkdir(parents=True, exist_ok=True)
    return root


@pytest.fixture(scope="session")
def edgekit_script() -> Path:
    if not EDGEKIT.is_file():
        pytest.fail(f"the edgekit console script is not installed next to {sys.executable}")
    return EDGEKIT
