"""The stage runner: run once, skip when up to date, rerun on changed params or input content."""

from __future__ import annotations

import io
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from rich.console import Console

from edgekit.pipeline.fingerprint import fingerprint, path_digest
from edgekit.pipeline.runner import STAGE_FILE, read_stage, run_stage
from edgekit.errors import EdgekitError

STAGE = "distill"  # any stage name the runner knows; its folder is out/distill


class Body:
    """A stage body that records its calls and writes one file."""

    def __init__(self, fail: bool = False) -> None:
        self.calls = 0
        self.fail = fail

    def __call__(self, folder: Path) -> dict:
        self.calls += 1
        (folder / "model.bin").write_bytes(b"weights %d" % self.calls)
        if self.fail:
            raise RuntimeError("boom in the middle of the stage")
        return {"calls": self.calls}


def run(out: Path, body: Body, params: dict, inputs: dict, force: bool = False) -> tuple[dict, str]:
    buffer = io.StringIO()
    console = Console(file=buffer, width=200, color_system=None)
    record = run_stage(STAGE, "1", params, inputs, out, body, force=force, console=console)
    return record, buffer.getvalue()


@pytest.fixture
def setup(tmp_path: Path) -> tuple[Path, Path, Path]:
    out = tmp_path / "run"
    data = tmp_path / "data"
    data.mkdir()
    (data / "a.txt").write_text("alpha", encoding="utf-8")
    (data / "b.txt").write_text("beta", encoding="utf-8")
    single = tmp_path / "teacher.bin"
    single.write_bytes(b"teacher weights")
    return out, data, single


def leftovers(out: Path) -> list[str]:
    return sorted(p.name for p in out.iterdir() if p.name.startswith("."))


def test_runs_once_then_up_to_date(setup: tuple[Path, Path, Path]) -> None:
    out, data, single = setup
    body = Body()
    params = {"epochs": 3, "lr": 0.05}
    inputs = {"data": data, "teacher": single, "version": "digits/1"}
    record, text = run(out, body, params, inputs)
    assert body.calls == 1
    assert record["status"] == "complete"
    assert "up to date" not in text
    stage_json = out / STAGE / STAGE_FILE
    on_disk = json.loads(stage_json.read_text(encoding="utf-8"))
    assert on_disk["status"] == "complete"
    assert on_disk["fingerprint"] == record["fingerprint"]
    assert on_disk["result"] == {"calls": 1}
    assert (out / STAGE / "model.bin").read_bytes() == b"weights 1"
    before = stage_json.read_bytes()

    record2, text2 = run(out, body, dict(params), dict(inputs))
    assert body.calls == 1, "an up-to-date stage must not run its body"
    assert f"{STAGE}: up to date" in text2
    assert record2["fingerprint"] == record["fingerprint"]
    assert stage_json.read_bytes() == before
    assert read_stage(out, STAGE)["status"] == "complete"
    assert leftovers(out) == []


@pytest.mark.parametrize("change", ["param", "new_param", "string_input"])
def test_changed_parameter_reruns(setup: tuple[Path, Path, Path], change: str) -> None:
    out, data, single = setup
    body = Body()
    params = {"epochs": 3, "lr": 0.05}
    inputs = {"data": data, "version": "digits/1"}
    run(out, body, params, inputs)
    if change == "param":
        params = {"epochs": 4, "lr": 0.05}
    elif change == "new_param":
        params = {**params, "seed": 1}
    else:
        inputs = {"data": data, "version": "digits/2"}
    record, text = run(out, body, params, inputs)
    assert body.calls == 2
    assert "up to date" not in text
    assert "rerunning" in text
    assert {"param": "epochs", "new_param": "seed", "string_input": "input version"}[change] in text
    assert json.loads((out / STAGE / STAGE_FILE).read_text())["fingerprint"] == record["fingerprint"]
    assert (out / STAGE / "model.bin").read_bytes() == b"weights 2"
    # and the new state is itself up to date
    run(out, body, params, inputs)
    assert body.calls == 2


@pytest.mark.parametrize("which", ["file_in_dir", "single_file", "new_file_in_dir", "renamed_file"])
def test_changed_input_content_reruns(setup: tuple[Path, Path, Path], which: str) -> None:
    out, data, single = setup
    body = Body()
    inputs = {"data": data, "teacher": single}
    run(out, body, {"epochs": 1}, inputs)
    if which == "file_in_dir":
        (data / "a.txt").write_text("alphA", encoding="utf-8")
    elif which == "single_file":
        single.write_bytes(b"teacher weights, retrained")
    elif which == "new_file_in_dir":
        (data / "c.txt").write_text("gamma", encoding="utf-8")
    else:
        (data / "b.txt").rename(data / "b2.txt")
    _, text = run(out, body, {"epochs": 1}, inputs)
    assert body.calls == 2, f"changing the input ({which}) must rerun the stage"
    assert "up to date" not in text
    assert ("input teacher" if which == "single_file" else "input data") in text


def test_touch_without_content_change_is_up_to_date(setup: tuple[Path, Path, Path]) -> None:
    out, data, single = setup
    body = Body()
    inputs = {"data": data, "teacher": single}
    run(out, body, {"epochs": 1}, inputs)
    for path in (data / "a.txt", single):
        stat = path.stat()
        os.utime(path, (stat.st_atime + 1000, stat.st_mtime + 1000))
        path.write_bytes(path.read_bytes())  # rewritten, same bytes
    _, text = run(out, body, {"epochs": 1}, inputs)
    assert body.calls == 1
    assert "up to date" in text


def test_force_reruns(setup: tuple[Path, Path, Path]) -> None:
    out, data, _ = setup
    body = Body()
    run(out, body, {"epochs": 1}, {"data": data})
    _, text = run(out, body, {"epochs": 1}, {"data": data}, force=True)
    assert body.calls == 2
    assert "up to date" not in text
    assert (out / STAGE / "model.bin").read_bytes() == b"weights 2"


def test_failing_body_leaves_nothing(setup: tuple[Path, Path, Path]) -> None:
    out, data, _ = setup
    with pytest.raises(RuntimeError, match="boom"):
        run(out, Body(fail=True), {"epochs": 1}, {"data": data})
    assert not (out / STAGE).exists()
    assert leftovers(out) == [], "no .partial temporary folder may stay behind"
    assert not any(".partial" in p.name for p in out.rglob("*"))
    with pytest.raises(EdgekitError, match="no finished"):
        read_stage(out, STAGE)


def test_failing_rerun_keeps_earlier_complete_output(setup: tuple[Path, Path, Path]) -> None:
    out, data, _ = setup
    run(out, Body(), {"epochs": 1}, {"data": data})
    folder = out / STAGE
    snapshot = {p.name: p.read_bytes() for p in folder.iterdir()}
    with pytest.raises(RuntimeError, match="boom"):
        run(out, Body(fail=True), {"epochs": 2}, {"data": data})
    assert {p.name: p.read_bytes() for p in folder.iterdir()} == snapshot
    assert leftovers(out) == []
    assert read_stage(out, STAGE)["params"] == {"epochs": 1}
    # forced rerun failing must not destroy it either
    with pytest.raises(RuntimeError):
        run(out, Body(fail=True), {"epochs": 1}, {"data": data}, force=True)
    assert {p.name: p.read_bytes() for p in folder.iterdir()} == snapshot
    # the old output is still up to date for its own params
    body = Body()
    _, text = run(out, body, {"epochs": 1}, {"data": data})
    assert body.calls == 0 and "up to date" in text


def test_incomplete_stage_json_is_not_up_to_date(setup: tuple[Path, Path, Path]) -> None:
    out, data, _ = setup
    body = Body()
    run(out, body, {"epochs": 1}, {"data": data})
    path = out / STAGE / STAGE_FILE
    record = json.loads(path.read_text())
    record["status"] = "running"
    path.write_text(json.dumps(record))
    run(out, body, {"epochs": 1}, {"data": data})
    assert body.calls == 2
    path.write_text("{ not json")
    run(out, body, {"epochs": 1}, {"data": data})
    assert body.calls == 3


def test_fingerprint_function() -> None:
    base = fingerprint("distill", "1", {"a": 1, "b": [1, 2]}, {"data": "x"})
    assert base == fingerprint("distill", "1", {"b": [1, 2], "a": 1}, {"data": "x"})  # key order is irrelevant
    assert base != fingerprint("teacher", "1", {"a": 1, "b": [1, 2]}, {"data": "x"})
    assert base != fingerprint("distill", "2", {"a": 1, "b": [1, 2]}, {"data": "x"})
    assert base != fingerprint("distill", "1", {"a": 2, "b": [1, 2]}, {"data": "x"})
    assert base != fingerprint("distill", "1", {"a": 1, "b": [1, 2]}, {"data": "y"})
    # a SHA-256 hex digest: 64 lowercase hex digits, nothing else (stage.json stores and compares it as text)
    assert re.fullmatch(r"[0-9a-f]{64}", base), base
    # stable: the same call gives the same digest
    assert fingerprint("distill", "1", {"a": 1, "b": [1, 2]}, {"data": "x"}) == base
    # ... and in another process with another hash seed: a rerun compares it with the one stage.json holds
    code = ("from edgekit.pipeline.fingerprint import fingerprint; "
            "print(fingerprint('distill', '1', {'b': [1, 2], 'a': 1}, {'data': 'x'}))")
    other = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                           env={**os.environ, "PYTHONHASHSEED": "12345"})
    assert other.stdout.strip() == base
    # and different for inputs that differ only in a nested value or a type
    assert base != fingerprint("distill", "1", {"a": 1, "b": [2, 1]}, {"data": "x"})
    assert base != fingerprint("distill", "1", {"a": "1", "b": [1, 2]}, {"data": "x"})


def test_path_digest_ignores_stage_json_and_mtime(tmp_path: Path) -> None:
    folder = tmp_path / "stage"
    folder.mkdir()
    (folder / "model.bin").write_bytes(b"w")
    first = path_digest(folder)
    (folder / STAGE_FILE).write_text('{"seconds": 1.0}')
    assert path_digest(folder) == first
    os.utime(folder / "model.bin", (1, 1))
    assert path_digest(folder) == first
    (folder / "sub").mkdir()
    (folder / "sub" / "x").write_bytes(b"")
    assert path_digest(folder) != first
