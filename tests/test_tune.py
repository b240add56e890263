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
