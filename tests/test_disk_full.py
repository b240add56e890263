"""A full disk while a stage writes: one clear line, exit 2, and the previous complete outputs untouched."""

from __future__ import annotations

import errno
import hashlib
import os
import sys
from pathlib import Path

import pytest

from conftest import make_image_folder, run_cli
from edgekit import cli

FLAGS = ["--size", "16", "--teacher-arch", "resnet18", "--epochs", "1"]


def _digests(folder: Path) -> dict[str, str]:
    """Every file's digest, checkpoints aside (the failed rerun's epoch checkpoint is kept for resuming)."""
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file() and ".resume" not in p.parts}


def test_full_disk_during_a_stage_keeps_the_last_complete_output(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                                 capsys: pytest.CaptureFixture[str]) -> None:
    data = make_image_folder(tmp_path / "data", {"train": ["a", "b"], "test": ["a", "b"]}, per_class=4)
    out = tmp_path / "run"
    first = run_cli(["teacher", "--data", str(data), *FLAGS, "--out", str(out)], cwd=tmp_path)
    assert first.returncode == 0, first.stderr
    before = _digests(out)

    real_fsync = os.fsync

    def fsync(fd: int) -> None:  # the disk fills up while the rerun writes into its temporary stage folder
        if ".teacher.partial-" in os.readlink(f"/proc/self/fd/{fd}"):
            raise OSError(errno.ENOSPC, "No space left on device")
        real_fsync(fd)

    monkeypatch.setattr(os, "fsync", fsync)
    monkeypatch.setattr(sys, "argv", ["edgekit", "teacher", "--data", str(data), *FLAGS, "--out", str(out), "--force"])
    with pytest.raises(SystemExit) as exit_info:
        cli.main()
    assert exit_info.value.code == 2
    err = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
    assert len(err) == 1 and err[0].startswith("error: out of disk space writing ") and ".teacher.partial-" in err[0], err
    assert "Traceback" not in err[0]
    assert _digests(out) == before, "the teacher stage from the first run is untouched"
    assert [p.name for p in out.iterdir() if p.name.startswith(".") and p.name != ".resume"] == [], \
        "no temporary folder or lock left behind"


@pytest.mark.skipif(not Path("/proc/self/fd").is_dir(), reason="needs /proc to tell which file an fsync is for")
def test_proc_fd_names_files() -> None:
    with open(__file__, "rb") as handle:
        assert os.readlink(f"/proc/self/fd/{handle.fileno()}") == os.path.realpath(__file__)
