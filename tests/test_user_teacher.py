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


@pytest.mark.parametrize("suffix", [".safetensors", ".pt", ".pt2", ".onnx"])
def test_user_teacher_formats_load_and_are_measured(tmp_path: Path, suffix: str) -> None:
    model = _teacher()
    path = tmp_path / f"teacher{suffix}"
    if suffix == ".safetensors":
        save_file({k: v.contiguous() for k, v in model.state_dict().items()}, str(path))
    elif suffix == ".pt":
        torch.save(model.state_dict(), path)
    elif suffix == ".onnx":
        from edgekit.export.onnx_format import export_onnx

        export_onnx(model, torch.zeros(1, 3, 16, 16), path, {})
    else:
        program = torch.export.export(model, (torch.zeros(2, 3, 16, 16),),
                                      dynamic_shapes=({0: torch.export.Dim("batch", min=1, max=1024)},))
        torch.export.save(program, str(path))
    out = tmp_path / "run"
    result = _run("--teacher", str(path), "--out", str(out), *TINY)
    assert result.returncode == 0, result.stderr
    record = json.loads((out / "teacher" / "stage.json").read_text())
    assert record["status"] == "complete"
    if suffix == ".onnx":  # counted from the graph's initializers, where the exporter folded batch norm
        assert 0.9 < record["result"]["params"] / sum(p.numel() for p in model.parameters()) <= 1.0
    else:
        assert record["result"]["params"] == sum(p.numel() for p in model.parameters())
    assert 0.0 <= record["result"]["accuracy"] <= 1.0
    # The stage keeps its own copy: safetensors for state dicts, the program itself for .pt2.
    kept = out / "teacher" / {".pt2": "model.pt2", ".onnx": "model.onnx"}.get(suffix, "model.safetensors")
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


def test_onnx_teacher_gives_the_pytorch_teachers_logits(tmp_path: Path) -> None:
    from edgekit.export.onnx_format import export_onnx
    from edgekit.models.onnx_teacher import OnnxTeacher

    model = _teacher()
    x = torch.rand(5, 3, 16, 16)
    for batch in (1, 2):  # dynamic batch, and a model exported for batches of 2 fed 5 images
        path = tmp_path / f"t{batch}.onnx"
        if batch == 1:
            export_onnx(model, x[:1], path, {})
        else:
            torch.onnx.export(model, (x[:2],), str(path), input_names=["image"], dynamo=False)
        teacher = OnnxTeacher(path)
        with torch.no_grad():
            assert torch.allclose(teacher(x), model(x), atol=1e-4), path.name


def _evil_pt2(tmp_path: Path, name: str, marker: Path) -> Path:
    """A genuine .pt2 whose sample inputs are replaced by a pickle that creates ``marker`` when unpickled."""
    import io
    import zipfile

    good = tmp_path / f"{name}-good.pt2"
    torch.export.save(torch.export.export(torch.nn.Linear(2, 2), (torch.zeros(1, 2),)), str(good))
    buffer = io.BytesIO()
    torch.save(((_Payload(marker),), {}), buffer)
    evil = tmp_path / f"{name}.pt2"
    with zipfile.ZipFile(good) as src, zipfile.ZipFile(evil, "w") as dst:
        for item in src.infolist():
            data = buffer.getvalue() if item.filename.endswith("sample_inputs/model.pt") else src.read(item.filename)
            dst.writestr(item, data)
    return evil


def test_pt2_needing_unpickling_is_refused_and_never_runs(tmp_path: Path) -> None:
    control_marker = tmp_path / "control-ran"
    control = _evil_pt2(tmp_path, "control", control_marker)
    try:  # the danger is real: torch.export.load falls back to full unpickling
        torch.export.load(str(control))
    except Exception:  # noqa: BLE001 - only the side effect matters
        pass
    assert control_marker.exists(), "this torch no longer falls back to weights_only=False; the test proves nothing"

    marker = tmp_path / "pwned"
    evil = _evil_pt2(tmp_path, "evil", marker)
    out = tmp_path / "run"
    result = _run("--teacher", str(evil), "--out", str(out), *TINY)
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert lines == [f"error: {evil} needs unsafe unpickling — convert it to safetensors (see README)"], result.stderr
    assert not marker.exists()
    assert not out.exists()
