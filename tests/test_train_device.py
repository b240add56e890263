"""Where training runs (``train_device``) and which backend several processes use.

This machine and CI have no GPU, so the GPU side is checked as decisions (which device, which backend,
which error), with torch.cuda's answers replaced; a run on a GPU is the benchmarks' business.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from conftest import make_image_folder, run_cli

from edgekit.config import Settings, validate
from edgekit.errors import EdgekitError
from edgekit.pipeline import distributed


def fake_gpus(monkeypatch: pytest.MonkeyPatch, count: int) -> None:
    monkeypatch.setattr(torch.cuda, "is_available", lambda: count > 0)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: count)


def test_without_a_gpu_training_stays_on_the_cpu_over_gloo(monkeypatch: pytest.MonkeyPatch) -> None:
    fake_gpus(monkeypatch, 0)
    assert distributed.backend() == "gloo"
    assert distributed.training_device("auto") == torch.device("cpu")
    assert distributed.training_device("cpu") == torch.device("cpu")
    with pytest.raises(EdgekitError, match="train_device = cuda, but no GPU is visible") as err:
        distributed.training_device("cuda")
    assert "--train-device cpu" in err.value.fix


def test_with_gpus_each_process_takes_its_own_and_nccl_carries_them(monkeypatch: pytest.MonkeyPatch) -> None:
    fake_gpus(monkeypatch, 2)
    assert distributed.backend() == "cpu:gloo,cuda:nccl"  # stop flags and CPU-side QAT still over gloo
    monkeypatch.setenv("LOCAL_WORLD_SIZE", "2")
    monkeypatch.setenv("LOCAL_RANK", "1")
    assert distributed.training_device("auto") == torch.device("cuda", 1)
    assert distributed.training_device("cpu") == torch.device("cpu")


def test_more_processes_than_gpus_fall_back_to_the_cpu_or_stop(monkeypatch: pytest.MonkeyPatch) -> None:
    fake_gpus(monkeypatch, 1)
    monkeypatch.setenv("LOCAL_WORLD_SIZE", "2")
    monkeypatch.setenv("LOCAL_RANK", "0")
    assert distributed.training_device("auto") == torch.device("cpu")  # all processes alike, or DDP would hang
    with pytest.raises(EdgekitError, match="2 processes share 1 GPU"):
        distributed.training_device("cuda")


def test_an_unknown_train_device_is_refused() -> None:
    with pytest.raises(EdgekitError, match="unknown train_device 'tpu'"):
        validate(Settings(train_device="tpu"))


def test_cuda_asked_for_on_a_machine_without_one_exits_2_before_training(tmp_path: Path) -> None:
    if torch.cuda.is_available():
        pytest.skip("this machine has a GPU")
    make_image_folder(tmp_path / "data", {"train": ["a", "b"], "test": ["a", "b"]}, per_class=4)
    unknown = run_cli(["teacher", "--data", str(tmp_path / "data"), "--train-device", "tpu", "--out", "run"],
                      cwd=tmp_path)
    assert unknown.returncode == 2 and "unknown train_device 'tpu'" in unknown.stderr, unknown.stderr[-2000:]
    result = run_cli(["teacher", "--data", str(tmp_path / "data"), "--size", "16", "--epochs", "1",
                      "--train-device", "cuda", "--out", "run"], cwd=tmp_path)
    assert result.returncode == 2, result.stderr[-2000:]
    assert "train_device = cuda, but no GPU is visible" in result.stderr
    assert "Traceback" not in result.stderr
    assert not (tmp_path / "run" / "teacher" / "stage.json").exists()
