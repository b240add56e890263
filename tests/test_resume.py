"""Per-epoch checkpoints: a resumed training loop ends bit for bit where an uninterrupted one does."""

import json
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from edgekit.distill import train_loop
from edgekit.pipeline import resume
from edgekit.pipeline.resume import EpochCheckpoint, stage_slot


class Interrupted(Exception):
    pass


def _model() -> torch.nn.Module:
    torch.manual_seed(0)
    return torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3, padding=1), torch.nn.BatchNorm2d(4), torch.nn.ReLU(),
                               torch.nn.Flatten(), torch.nn.Dropout(0.3), torch.nn.Linear(4 * 8 * 8, 3))


def _loss(logits, _teacher, y):  # noqa: ANN001, ANN202
    loss = F.cross_entropy(logits, y) + 1e-3 * float(np.random.rand())  # consumes numpy's RNG as a loss may
    return loss, {"ce": float(loss.detach())}


def _train(out: Path, epochs: int = 4) -> tuple[torch.nn.Module, list]:
    g = torch.Generator().manual_seed(1)
    x, y = torch.rand(40, 3, 8, 8, generator=g), torch.randint(0, 3, (40,), generator=g)
    model = _model().train()
    with stage_slot(out, "distill", "fp-1"):
        history = train_loop.train(model, x, y, loss_fn=_loss, epochs=epochs, lr=0.05, batch_size=8, seed=3,
                                   stage="distill")
    return model, history


def _interrupt_after(monkeypatch: pytest.MonkeyPatch, epochs_done: int) -> None:
    seen = {"n": 0}

    def point(name: str) -> None:
        if name == "epoch-end":
            seen["n"] += 1
            if seen["n"] == epochs_done:
                raise Interrupted

    monkeypatch.setattr(resume, "fault_point", point)


def test_resumed_run_is_bit_identical(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                      capsys: pytest.CaptureFixture[str]) -> None:
    reference, ref_history = _train(tmp_path / "a")
    _interrupt_after(monkeypatch, 2)
    with pytest.raises(Interrupted):
        _train(tmp_path / "b")
    monkeypatch.undo()
    np.random.seed(12345)  # a fresh process starts from other RNG states: the checkpoint must restore them
    resumed, history = _train(tmp_path / "b")
    assert "resuming distill from epoch 3 (2 of 4 done)" in capsys.readouterr().err
    assert history == ref_history
    for (name, a), b in zip(reference.state_dict().items(), resumed.state_dict().values()):
        assert torch.equal(a, b), name


def test_checkpoint_of_other_settings_is_ignored(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _interrupt_after(monkeypatch, 1)
    with pytest.raises(Interrupted):
        _train(tmp_path)
    monkeypatch.undo()
    model = _model()
    opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=0.1, total_steps=20)
    folder = tmp_path / resume.RESUME_DIR / "distill"
    assert EpochCheckpoint(folder, "fp-1", "distill").restore(model, opt, sched) is not None
    assert EpochCheckpoint(folder, "fp-2", "distill").restore(model, opt, sched) is None


def test_torn_checkpoint_is_ignored(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _interrupt_after(monkeypatch, 1)
    with pytest.raises(Interrupted):
        _train(tmp_path)
    monkeypatch.undo()
    folder = tmp_path / resume.RESUME_DIR / "distill"
    tensors = folder / "distill.safetensors"
    tensors.write_bytes(tensors.read_bytes()[:100])  # a different tensors file than the JSON names
    model = _model()
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=0.1, total_steps=20)
    assert EpochCheckpoint(folder, "fp-1", "distill").restore(model, opt, sched) is None


def test_optimizer_state_round_trips_through_safetensors_and_json(tmp_path: Path) -> None:
    model = torch.nn.Linear(3, 2)
    opt = torch.optim.AdamW(model.parameters(), lr=0.01, betas=(0.8, 0.95))
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=0.01, total_steps=10)
    model(torch.ones(1, 3)).sum().backward()
    opt.step()
    sched.step()
    EpochCheckpoint(tmp_path, "fp", "loop").save(0, [{"loss": 1.0}], model, opt, sched)
    assert not list(tmp_path.glob("*.pkl")) and {p.suffix for p in tmp_path.iterdir()} == {".json", ".safetensors"}
    model2 = torch.nn.Linear(3, 2)
    opt2 = torch.optim.AdamW(model2.parameters(), lr=0.01)
    sched2 = torch.optim.lr_scheduler.OneCycleLR(opt2, max_lr=0.01, total_steps=10)
    assert EpochCheckpoint(tmp_path, "fp", "loop").restore(model2, opt2, sched2).next_epoch == 1
    betas = opt2.state_dict()["param_groups"][0]["betas"]
    assert isinstance(betas, tuple) and betas == opt.state_dict()["param_groups"][0]["betas"]
    for k, v in opt.state_dict()["state"][0].items():
        assert torch.equal(v, opt2.state_dict()["state"][0][k]), k
    assert sched2.state_dict() == sched.state_dict()


def test_non_finite_loss_stops_and_keeps_the_last_good_checkpoint(tmp_path: Path) -> None:
    from edgekit.errors import EdgekitError

    g = torch.Generator().manual_seed(1)
    x, y = torch.rand(16, 3, 8, 8, generator=g), torch.randint(0, 3, (16,), generator=g)
    calls = {"n": 0}

    def blows_up_in_epoch_2(logits, teacher, labels):  # noqa: ANN001, ANN202
        calls["n"] += 1
        loss, parts = _loss(logits, teacher, labels)
        return (loss * float("nan"), parts) if calls["n"] > 2 else (loss, parts)  # 2 steps per epoch

    with stage_slot(tmp_path, "distill", "fp"), pytest.raises(EdgekitError) as error:
        train_loop.train(_model().train(), x, y, loss_fn=blows_up_in_epoch_2, epochs=3, lr=0.05, batch_size=8, seed=0,
                         stage="distill")
    assert "distill: the loss became nan in epoch 2" in error.value.one_line()
    assert "lower the learning rate" in error.value.one_line()
    meta = json.loads((tmp_path / resume.RESUME_DIR / "distill" / "distill.json").read_text())
    assert meta["epoch"] == 0, "the checkpoint after epoch 1 is the last good one"


def test_force_stage_reruns_that_stage_and_every_later_one() -> None:
    from edgekit.errors import EdgekitError
    from edgekit.chain import ORDER, forced_stages

    assert forced_stages(list(ORDER), False, "quantize") == {"quantize", "export", "benchmark"}
    assert forced_stages(["distill"], False, "teacher") == {"distill"}
    assert forced_stages(list(ORDER), True, None) == set(ORDER)
    assert forced_stages(list(ORDER), False, None) == set()
    with pytest.raises(EdgekitError, match="did you mean 'export'"):
        forced_stages(list(ORDER), False, "exprt")


def test_resumed_qat_run_is_bit_identical(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A PT2E QAT graph: its observers' eps (2**-12) must survive the checkpoint (torchao resets it when the
    state dict's module versions are missing), or the resumed run ends with other INT8 scales."""
    from edgekit.distill.losses import KDLoss
    from edgekit.quantize import pt2e

    g = torch.Generator().manual_seed(1)
    x, y = torch.rand(24, 3, 8, 8, generator=g), torch.randint(0, 3, (24,), generator=g)

    def qat(out: Path) -> torch.nn.Module:
        torch.manual_seed(0)
        model = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3, padding=1), torch.nn.BatchNorm2d(4), torch.nn.ReLU(),
                                    torch.nn.Flatten(), torch.nn.Linear(4 * 8 * 8, 3))
        prepared = pt2e.prepare(model.eval(), x[:2], "qat")
        pt2e.to_train(prepared)
        with stage_slot(out, "quantize", "fp-qat"):
            train_loop.train(prepared, x, y, loss_fn=KDLoss(), epochs=3, lr=0.01, batch_size=8, seed=2,
                             stage="quantize (QAT)")
        return prepared

    reference = qat(tmp_path / "a")
    _interrupt_after(monkeypatch, 2)
    with pytest.raises(Interrupted):
        qat(tmp_path / "b")
    monkeypatch.undo()
    resumed = qat(tmp_path / "b")
    epsilons = [k for k in reference.state_dict() if k.endswith(".eps")]
    assert epsilons and all(float(reference.state_dict()[k]) == 2**-12 for k in epsilons)
    for (name, a), b in zip(reference.state_dict().items(), resumed.state_dict().values()):
        assert torch.equal(a, b), name
