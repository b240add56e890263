"""The wheel a user gets from `pip wheel` / PyPI holds every module and data file of the checkout."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _source_files() -> set[str]:
    """Every module and data file below edgekit/, through the link to targets/ as the build follows it."""
    found = set()
    for folder, dirs, names in os.walk(ROOT / "edgekit", followlinks=True):
        dirs[:] = [d for d in dirs if d != "__pycache__"]
        found |= {(Path(folder) / n).relative_to(ROOT).as_posix() for n in names if n.endswith((".py", ".toml", ".json"))}
    return found


def test_the_wheel_holds_every_module_and_data_file(tmp_path: Path) -> None:
    source = tmp_path / "src"
    source.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, source / name)
    shutil.copytree(ROOT / "targets", source / "targets")
    shutil.copytree(ROOT / "edgekit", source / "edgekit", symlinks=True,
                    ignore=shutil.ignore_patterns("__pycache__"))
    built = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q",
                            "-w", str(tmp_path / "dist"), str(source)], capture_output=True, text=True)
    assert built.returncode == 0, built.stderr[-2000:]
    wheel, = (tmp_path / "dist").glob("edgekit-*.whl")
    inside = set(zipfile.ZipFile(wheel).namelist())
    expected = _source_files()
    assert "edgekit/inference/predict.py" in expected and "edgekit/targets/rpi4.toml" in expected
    assert sorted(expected - inside) == []
    entry = next(n for n in inside if n.endswith("entry_points.txt"))
    assert "edgekit = edgekit.cli:main" in zipfile.ZipFile(wheel).read(entry).decode()
