"""Ensemble, progressive and self-distillation end to end at tiny size, through the real CLI.

Built-in digits at 16 px and one epoch a loop: the checks are about what runs and what is written
(members, assistants, generations, the guide the QAT stage learns from, the soft-label cache), not
about accuracy, which benchmarks/ measures.
"""

from __future__ import annotations

import json
from pathlib import Path

from conftest import run_cli

TINY = ["--size", "16", "--epochs", "1"]


def stage(out: Path, name: str) -> dict:
    return json.loads((out / name / "stage.json").read_text())


def run_stages(tmp_path: Path, out: Path, stages: list[str], *flags: str) -> list[str]:
    errors = []
    for name in stages:
        result = run_cli([name, *TINY, *flags, "--out", str(out)], cwd=tmp_path)
        assert result.returncode == 0, result.stderr[-2000:]
        errors.append(result.stderr)
    return errors


def test_ensemble_trains_two_teachers_and_averages_them(tmp_path: Path) -> None:
    out = tmp_path / "run"
    logs = run_stages(tmp_path, out, ["teacher", "distill"], "--method", "ensemble")
    teacher = stage(out, "teacher")["result"]
    assert len(teacher["members"]) == 2 and teacher["params"] == sum(m["params"] for m in teacher["members"])
    assert (out / "teacher" / "member-2" / "model.safetensors").is_file()
    assert json.loads((out / "teacher" / "ensemble.json").read_text()) == {"members": 2, "weights": [1.0, 1.0]}
    assert "teacher 2 of 2" in logs[0] and "ensemble of 2" in logs[0]
    assert stage(out, "distill")["result"]["method"] == "ensemble"


def test_progressive_trains_an_assistant_and_quantizes_with_it(tmp_path: Path) -> None:
    out = tmp_path / "run"
    logs = run_stages(tmp_path, out, ["teacher", "distill", "quantize"], "--method", "progressive")
    steps = stage(out, "distill")["result"]["intermediate"]
    assert len(steps) == 1 and steps[0]["width"] > 0.35
    assert json.loads((out / "distill" / "guide" / "model.json").read_text())["width"] == steps[0]["width"]
    assert "distill (assistant 1 of 1" in logs[1]
    # QAT learns from the assistant too, reading the soft labels the student's loop cached for it
    assert "quantize (QAT): soft labels of 1 epoch(s) read from the cache" in logs[2]


def test_self_distillation_needs_no_teacher_architecture(tmp_path: Path) -> None:
    out = tmp_path / "run"
    (tmp_path / "self.toml").write_text("generations = 3\n")
    logs = run_stages(tmp_path, out, ["teacher", "distill"], "--method", "self", "--config", str(tmp_path / "self.toml"))
    teacher = stage(out, "teacher")["result"]
    assert teacher["arch"] == "mobilenet_v2" and "generation 1" in teacher["source"]
    steps = stage(out, "distill")["result"]["intermediate"]
    assert [s["label"] for s in steps] == ["distill (generation 2)"]
    assert (out / "distill" / "guide" / "model.safetensors").is_file()
    assert "resnet" not in logs[0]


def test_feature_method_rerun_reuses_the_teacher_and_its_cache(tmp_path: Path) -> None:
    out = tmp_path / "run"
    run_stages(tmp_path, out, ["teacher", "distill"], "--method", "kd+at")
    logs = run_stages(tmp_path, out, ["teacher", "distill"], "--method", "at", "--alpha", "0.5")
    assert "teacher: up to date" in logs[0]
    assert "soft labels of 1 epoch(s) read from the cache, 0 computed" in logs[1]
    assert stage(out, "distill")["result"]["loss_terms"] == ["at"]
