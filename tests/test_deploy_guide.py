"""DEPLOY.md and report.html's code to paste: filled with the run's own file, input and labels, and the two
Python snippets, run as the scripts they are on the run's files, give edgekit's own top-1."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from conftest import digits_test_split

IMAGES = 60


@pytest.fixture(scope="module")
def run(e2e_run: Path) -> Path:
    return e2e_run / "run"


@pytest.fixture(scope="module")
def guide(run: Path) -> str:
    return (run / "DEPLOY.md").read_text(encoding="utf-8")


def _blocks(guide: str) -> dict[str, str]:
    """``{section title: code}`` of every fenced block."""
    return dict(re.findall(r"^## (.+?)\n\n```\w+\n(.*?)```", guide, flags=re.S | re.M))


def test_guide_names_the_pick_and_its_input(run: Path, guide: str) -> None:
    report = json.loads((run / "report.json").read_text(encoding="utf-8"))
    pick = report["deploy"]["name"]
    assert guide.startswith(f"# Deploying {pick}\n")
    titles = list(_blocks(guide))
    assert [t.split(",")[0] for t in titles] == ["Android (Kotlin", "iOS (Swift", "Raspberry Pi and other boards (Python",
                                                 "Server or desktop (Python"]
    blocks = _blocks(guide)
    assert 'setModelAssetPath("model_int8.tflite")' in blocks[titles[0]]
    assert 'forResource: "model_int8", ofType: "tflite"' in blocks[titles[1]]
    assert "SIZE = (32, 32)" in blocks[titles[2]] and "np.uint8" in blocks[titles[2]]
    html = (run / "report.html").read_text(encoding="utf-8")
    assert "<h2>Code to paste</h2>" in html and "setModelAssetPath(&quot;model_int8.tflite&quot;)" in html


@pytest.fixture(scope="module")
def photos(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    """Held-out digits saved as the 8-bit grayscale images an app starts from."""
    folder = tmp_path_factory.mktemp("photos")
    gray, _ = digits_test_split()
    paths = []
    for i, image in enumerate(gray[:IMAGES]):
        paths.append(folder / f"{i:03d}.png")
        Image.fromarray(image).save(paths[-1])
    return paths


def _own_top1(run: Path, name: str, photos: list[Path]) -> list[str]:
    from edgekit.data.preprocess import PreprocessSpec
    from edgekit.runtime.runners import open_runner

    doc = json.loads((run / "artifacts" / "preprocess.json").read_text(encoding="utf-8"))
    spec = PreprocessSpec(size=tuple(doc["size"]), mean=tuple(doc["mean"]), std=tuple(doc["std"]))
    rgb = np.stack([spec.resize(Image.open(p)) for p in photos])
    top1 = open_runner(run / "artifacts" / name, doc["artifacts"][name], threads=1)(spec.normalize(rgb).numpy()).argmax(1)
    labels = (run / "artifacts" / "labels.txt").read_text(encoding="utf-8").splitlines()
    return [labels[i] for i in top1]


@pytest.mark.parametrize("section", ["Raspberry Pi", "Server or desktop"])
def test_python_snippet_gives_edgekit_top1(run: Path, guide: str, photos: list[Path], tmp_path: Path,
                                           section: str) -> None:
    title, code = next((t, c) for t, c in _blocks(guide).items() if t.startswith(section))
    script = tmp_path / "snippet.py"
    script.write_text(code, encoding="utf-8")
    done = subprocess.run([sys.executable, str(script), *map(str, photos)], cwd=run / "artifacts",
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    lines = done.stdout.splitlines()
    assert [line.split(" ")[0] for line in lines] == [str(p) for p in photos]
    model = title.rsplit(", ", 1)[1]
    assert [line.split(" ")[1] for line in lines] == _own_top1(run, model, photos)
