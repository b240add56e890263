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


def run_cli(args: list[str], cwd: Path, timeout: float = 600, env_extra: dict[str, str] | None = None) -> CliResult:
    env = {**os.environ, **(env_extra or {})}
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


def make_yolo_scenes(root: Path, counts: dict[str, int], size: int = 64) -> Path:
    """A YOLO-layout data set (data.yaml, images/<split>, labels/<split>) from the built-in scene generator."""
    from edgekit.detect.scenes import CLASSES, make_scene, split_seed

    for split, count in counts.items():
        (root / "images" / split).mkdir(parents=True, exist_ok=True)
        (root / "labels" / split).mkdir(parents=True, exist_ok=True)
        for i in range(count):
            scene = make_scene(split_seed(split, i, 0), size)
            Image.fromarray(scene.image).save(root / "images" / split / f"{i}.png")
            lines = [f"{int(c)} {(b[0] + b[2]) / 2 / size:.6f} {(b[1] + b[3]) / 2 / size:.6f} "
                     f"{(b[2] - b[0]) / size:.6f} {(b[3] - b[1]) / size:.6f}" for b, c in zip(scene.boxes, scene.labels)]
            (root / "labels" / split / f"{i}.txt").write_text("".join(f"{line}\n" for line in lines), encoding="utf-8")
    splits = "".join(f"{split}: images/{split}\n" for split in counts)
    (root / "data.yaml").write_text(f"path: .\n{splits}names: {list(CLASSES)}\n", encoding="utf-8")
    return root / "data.yaml"


@pytest.fixture(scope="session")
def edgekit_script() -> Path:
    if not EDGEKIT.is_file():
        pytest.fail(f"the edgekit console script is not installed next to {sys.executable}")
    return EDGEKIT


# --- one tiny `edgekit compress` on the built-in digits, shared by every module that needs a finished run ---

E2E_SIZE = 32
# Small, but trained enough that the INT8 logits are rarely near-ties: integer kernels round differently
# from PyTorch's simulated INT8, so an undertrained student (width 0.25 at 24 px, ~91 % accuracy) flips
# its top-1 on rounding alone (agreement 0.983-0.989 measured); here the student reaches ~96 %.
E2E_FLAGS = ["--width", "0.35", "--size", str(E2E_SIZE), "--teacher-arch", "resnet18"]
E2E_CONFIG = """\
teacher_epochs = 6
distill_epochs = 15
qat_epochs = 1
latency_runs = 5
latency_seconds = 0.5
"""


def compress_e2e(folder: Path) -> CliResult:
    return run_cli(["compress", *E2E_FLAGS, "--config", str(folder / "edgekit.toml"), "--out", str(folder / "run")],
                   cwd=folder, timeout=1500)


@pytest.fixture(scope="session")
def e2e_run(tmp_path_factory: pytest.TempPathFactory, edgekit_script: Path) -> Path:
    """The folder holding ``run/`` (the compress output) and ``edgekit.toml``; the run is made once per session."""
    folder = tmp_path_factory.mktemp("e2e")
    (folder / "edgekit.toml").write_text(E2E_CONFIG, encoding="utf-8")
    result = compress_e2e(folder)
    if result.returncode != 0:
        pytest.fail(f"edgekit compress failed ({result.returncode})\nstdout:\n{result.stdout[-4000:]}\n"
                    f"stderr:\n{result.stderr[-6000:]}", pytrace=False)
    (folder / "first_stderr.txt").write_text(result.stderr, encoding="utf-8")
    return folder


# --- the e2e run's held-out digits and PyTorch models, rebuilt from its files, for checks that recompute ---

def digits_test_split() -> tuple[np.ndarray, np.ndarray]:
    """The built-in data's test split as an app would hold it: (N, 8, 8) uint8 grayscale digits, labels.

    Made here from scikit-learn with the split edgekit documents (stratified, seed SPLIT_SEED), in the
    order edgekit evaluates them."""
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    from edgekit.data.builtin_digits import SPLIT_SEED, TEST_FRACTION

    digits = load_digits()
    _, test = train_test_split(np.arange(len(digits.target)), test_size=TEST_FRACTION, stratify=digits.target,
                               random_state=SPLIT_SEED)
    gray = np.rint(digits.images[test] * (255.0 / 16.0)).clip(0, 255).astype(np.uint8)
    return gray, digits.target[test].astype(np.int64)


def recipe_input(images_u8: np.ndarray, doc: dict) -> np.ndarray:
    """preprocess.json applied with PIL and numpy alone (no edgekit code): float32 NHWC."""
    height, width = doc["size"]
    filters = {"bilinear": Image.Resampling.BILINEAR, "nearest": Image.Resampling.NEAREST,
               "bicubic": Image.Resampling.BICUBIC}
    resized = np.stack([np.asarray(Image.fromarray(im).convert(doc["color"]).resize((width, height),
                                                                                  filters[doc["interpolation"]]))
                        for im in images_u8])
    x = resized.astype(np.float32) * np.float32(doc["scale"])
    return ((x - np.asarray(doc["mean"], dtype=np.float32)) / np.asarray(doc["std"], dtype=np.float32)).astype(np.float32)


@pytest.fixture(scope="session")
def e2e_test_images(e2e_run: Path) -> tuple[np.ndarray, np.ndarray]:
    """The e2e run's test split through its preprocess.json: float32 NHWC images and their labels."""
    import json

    doc = json.loads((e2e_run / "run" / "artifacts" / "preprocess.json").read_text(encoding="utf-8"))
    gray, labels = digits_test_split()
    return recipe_input(gray, doc), labels
