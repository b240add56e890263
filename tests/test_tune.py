"""`edgekit tune` at tiny size: every trial is listed, the best becomes a config `compress` accepts, and a
rerun finds the finished trials up to date (a seeded sampler asks for the same settings again)."""

from __future__ import annotations

import json
from pathlib import Path

from conftest import run_cli

from edgekit.config import build_settings, load_config_file


def test_tune_lists_every_trial_and_writes_a_usable_config(tmp_path: Path) -> None:
    (tmp_path / "small.toml").write_text("teacher_epochs = 1\n", encoding="utf-8")
    args = ["tune", "--size", "16", "--trials", "2", "--trial-epochs", "1", "--methods", "kd,dkd",
            "--config", str(tmp_path / "small.toml"), "--out", "tuned"]
    first = run_cli(args, cwd=tmp_path)
    assert first.returncode == 0, first.stderr[-2000:]
    tuned = tmp_path / "tuned"
    report = json.loads((tuned / "tune.json").read_text())
    assert [t["trial"] for t in report["trials"]] == [0, 1]
    assert all(t["method"] in ("kd", "dkd") and 1.0 <= t["temperature"] <= 10.0 and 0.1 <= t["alpha"] <= 0.95
               for t in report["trials"])
    assert report["best"]["val_accuracy"] == max(t["val_accuracy"] for t in report["trials"])
    assert (tuned / "tune.md").read_text().count("| kd") + (tuned / "tune.md").read_text().count("| dkd") == 2
    settings = build_settings(load_config_file(tuned / "best.toml"), {})
    assert (settings.method, settings.temperature, settings.alpha) == (
        report["best"]["method"], report["best"]["temperature"], report["best"]["alpha"])
    assert "tune: trial 2/2" in first.stderr and "best of 2 trials" in first.stdout
    # one teacher pass before the trials: kd and dkd read the same logits, so no trial runs the teacher
    assert "tune: the teacher's side of kd+dkd for 1 epoch(s): 1 computed, 0 already cached" in first.stderr
    assert first.stderr.count("soft labels of 1 epoch(s) read from the cache, 0 computed") == 2

    second = run_cli(args, cwd=tmp_path)
    assert second.returncode == 0, second.stderr[-2000:]
    assert second.stderr.count("distill: up to date") == 2
    assert "1 epoch(s): 0 computed, 1 already cached" in second.stderr
    again = json.loads((tuned / "tune.json").read_text())["trials"]
    assert [{k: v for k, v in t.items() if k != "seconds"} for t in again] == \
        [{k: v for k, v in t.items() if k != "seconds"} for t in report["trials"]]


def _fake_study(monkeypatch, tmp_path: Path, fails: set[int]):  # noqa: ANN202
    """tune.search with each trial's training replaced: the trials in ``fails`` stop as a diverging loss does."""
    from rich.console import Console

    from edgekit.config import Settings
    from edgekit import tune
    from edgekit.errors import EdgekitError
    from edgekit.stages.context import StageContext

    def fake_trial(ctx, number, method, temperature, alpha, epochs):  # noqa: ANN001, ANN202
        if number in fails:
            raise EdgekitError("distill: the loss became nan in epoch 2", "lower the learning rate (e.g. halve it) and rerun")
        return 0.5 + number / 100, 0.1

    monkeypatch.setattr(tune, "run_trial", fake_trial)
    monkeypatch.setattr(tune, "prefill_trials", lambda ctx, methods, epochs: None)
    console = Console(stderr=True, soft_wrap=True)
    return tune, StageContext(settings=Settings(), out=tmp_path, console=console)


def test_a_diverging_trial_is_recorded_as_failed_and_the_search_goes_on(monkeypatch, tmp_path: Path, capsys) -> None:
    import optuna

    tune, ctx = _fake_study(monkeypatch, tmp_path, fails={0})
    states: list = []
    real_optimize = optuna.study.Study.optimize

    def optimize(study, *args, **kwargs):  # noqa: ANN001, ANN202
        real_optimize(study, *args, **kwargs)
        states.extend(t.state for t in study.trials)

    monkeypatch.setattr(optuna.study.Study, "optimize", optimize)
    rows = tune.search(ctx, 3, ["kd", "dkd"], 1)
    best = tune.write_reports(tmp_path, ctx.settings, rows, 1)
    err = capsys.readouterr().err
    assert states == [optuna.trial.TrialState.PRUNED, optuna.trial.TrialState.COMPLETE, optuna.trial.TrialState.COMPLETE]
    assert "Traceback" not in err and "tune: trial 1/3" in err and "failed (distill: the loss became nan" in err
    report = json.loads((tmp_path / "tune.json").read_text())
    assert [t["status"] for t in report["trials"]] == ["failed", "complete", "complete"]
    assert report["trials"][0]["val_accuracy"] is None and "loss became nan" in report["trials"][0]["reason"]
    assert report["failed"] == 1 and best["trial"] == 2 and report["best"]["trial"] == 2
    md = (tmp_path / "tune.md").read_text()
    assert "failed: distill: the loss became nan in epoch 2" in md and "1 failed (pruned)" in md
    assert (tmp_path / "best.toml").is_file()


def test_every_trial_failing_is_an_edgekit_error_after_the_reports(monkeypatch, tmp_path: Path) -> None:
    import pytest

    from edgekit.errors import EdgekitError

    tune, ctx = _fake_study(monkeypatch, tmp_path, fails={0, 1})
    rows = tune.search(ctx, 2, ["dkd"], 1)
    with pytest.raises(EdgekitError, match="every one of the 2 trials failed"):
        tune.write_reports(tmp_path, ctx.settings, rows, 1)
    report = json.loads((tmp_path / "tune.json").read_text())
    assert report["best"] is None and [t["status"] for t in report["trials"]] == ["failed", "failed"]
    assert not (tmp_path / "best.toml").exists()


def test_tune_exits_2_in_one_line_when_every_trial_diverges(tmp_path: Path) -> None:
    # A learning rate no training survives: every trial's loss overflows, a user's mistake, not a crash.
    (tmp_path / "wild.toml").write_text("teacher_epochs = 1\ndistill_lr = 1e12\n", encoding="utf-8")
    result = run_cli(["tune", "--size", "16", "--trials", "2", "--trial-epochs", "1", "--methods", "kd",
                      "--config", str(tmp_path / "wild.toml"), "--out", "wild"], cwd=tmp_path)
    assert result.returncode == 2, result.stderr[-2000:]
    assert "Traceback" not in result.stderr
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith("error: every one of the 2 trials failed (distill: the loss became"), last
    trials = json.loads((tmp_path / "wild" / "tune.json").read_text())["trials"]
    assert [t["status"] for t in trials] == ["failed", "failed"]


def test_tune_refuses_a_task_without_methods_to_search(tmp_path: Path) -> None:
    import subprocess
    import sys

    config = tmp_path / "detect.toml"
    config.write_text('task = "detect"\n')
    done = subprocess.run([str(Path(sys.executable).parent / "edgekit"), "tune", "--config", str(config),
                           "--out", str(tmp_path / "run")], capture_output=True, text=True)
    assert done.returncode == 2, done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and "tune searches distillation methods" in lines[0] and "Traceback" not in done.stderr
    assert not (tmp_path / "run").exists()
