"""A user's teacher in every accepted format loads; a file that needs full unpickling is refused unrun."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import torchvision
from safetensors.torch import save_file

EDGEKIT = str(Path(sys.executable).parent / "edgekit")
TINY = ["--size", "16", "--teacher-arch", "resnet18"]


def _teacher() -> torch.nn.Module:
    torch.manual_seed(0)
    return torchvision.models.resnet18(num_classes=10).eval()


def _run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([EDGEKIT, "teacher", *args], capture_output=True, text=True, timeout=300)


@pytest.mark.parametrize("suffix", [".safetensors", ".pt", ".pt2"])
def test_user_teacher_formats_load_and_are_measured(tmp_path: Path, suffix: str) -> None:
    model = _teacher()
    path = tmp_path / f"teacher{suffix}"
    if suffix == ".safetensors":
        save_file({k: v.contiguous() for k, v in model.state_dict().items()}, str(path))
    elif suffix == ".pt":
        torch.save(model.state_dict(), path)
    else:
        program = torch.export.export(model, (torch.zeros(2, 3, 16, 16),),
                                      dynamic_shapes=({0: torch.export.Dim("batch", min=1, max=1024)},))
        torch.export.save(program, str(path))
    out = tmp_path / "run"
    result = _run("--teacher", str(path), "--out", str(out), *TINY)
    assert result.returncode == 0, result.stderr
    record = json.loads((out / "teacher" / "stage.json").read_text())
    assert record["status"] == "complete"
    assert record["result"]["params"] == sum(p.numel() for p in model.parameters())
    assert 0.0 <= record["result"]["accuracy"] <= 1.0
    # The stage keeps its own copy: safetensors for state dicts, the program itself for .pt2.
    kept = out / "teacher" / ("model.pt2" if suffix == ".pt2" else "model.safetensors")
    assert kept.is_file()


class _Payload:
    """Unpickling this object would create a file: the proof that code from a checkpoint ran."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):  # noqa: ANN204
        return (Path.touch, (self.marker,))


def test_checkpoint_needing_unpickling_is_refused_and_never_runs(tmp_path: Path) -> None:
    marker = tmp_path / "pwned"
    path = tmp_path / "evil.pt"
    torch.save({"weight": torch.zeros(1), "payload": _Payload(marker)}, path)
    out = tmp_path / "run"
    result = _run("--teacher", str(path), "--out", str(out), *TINY)
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "unsafe unpickling" in lines[0], result.stderr
    assert "Traceback" not in result.stderr
    assert not marker.exists()
    assert not out.exists()
