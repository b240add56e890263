"""A run whose models learned too little says so: warning lines, a banner in the reports, a caveat on the pick."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from conftest import run_cli

from edgekit.bench.learned_check import learned_little
from edgekit.tasks.classify import ClassificationTask
from edgekit.tasks.detect import DetectionTask


def _report(teacher: float, student: float, task: str = "classify", classes: int = 10) -> dict:
    level = (ClassificationTask() if task == "classify" else DetectionTask()).useful_level(classes)
    report = {"useful": level, "teacher": {"arch": "t", "accuracy": teacher},
              "students": [{"name": "student_fp32", "accuracy": student}]}
    if task == "detect":
        report["metric"] = {"key": "map50", "name": "mAP50"}
    return report


def test_classification_floor_is_near_chance() -> None:
    assert ClassificationTask().useful_level(10)["floor"] == 0.19
    assert ClassificationTask().useful_level(2)["floor"] == 0.55
    assert learned_little(_report(0.98, 0.97)) == []
    found = learned_little(_report(0.12, 0.11))
    assert len(found) == 2 and "teacher's accuracy is 12.00 %" in found[0] and "near chance: 10 %" in found[0]


def test_detection_student_a_fraction_of_its_teacher() -> None:
    assert learned_little(_report(0.60, 0.45, "detect")) == []
    found = learned_little(_report(0.60, 0.20, "detect"))
    assert found == ["the FP32 student's mAP50 0.200 is under 50% of the teacher's 0.600"]
    found = learned_little(_report(0.033, 0.020, "detect"))  # the Aquarium photos with the old defaults
    assert "teacher's mAP50 is 0.033, under 0.100" in found[0] and "student's mAP50 is 0.020" in found[1]


def test_reports_without_a_level_stay_silent() -> None:
    assert learned_little({"teacher": {"accuracy": 0.01}, "students": []}) == []


def test_a_run_that_learned_little_says_so_everywhere(e2e_run: Path, tmp_path: Path) -> None:
    """The digits run with its recorded teacher and student accuracies set near chance: a warning line, the banner
    in report.md and report.html, the caveat on the deploy line; exit 0 (no budget on the metric)."""
    run = Path(shutil.copytree(e2e_run / "run", tmp_path / "run", symlinks=True))
    path = run / "benchmark" / "measurements.json"
    measurements = json.loads(path.read_text(encoding="utf-8"))
    measurements["teacher"]["accuracy"] = 0.105
    measurements["students"][0]["accuracy"] = 0.101
    path.write_text(json.dumps(measurements), encoding="utf-8")
    result = run_cli(["benchmark", str(run)], cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "benchmark: up to date" in result.stderr  # the reports are rewritten, nothing is measured again
    warnings = [line for line in (result.stdout + result.stderr).splitlines() if line.startswith("warning: the ")]
    assert len(warnings) == 2 and "teacher's accuracy is 10.50 %, under 19.00 %" in warnings[0], result.stderr[-2000:]
    report = json.loads((run / "report.json").read_text(encoding="utf-8"))
    assert report["useful"]["floor"] == 0.19 and len(report["learned_little"]) == 2
    assert "but the models learned too little to be useful" in report["deploy"]["why"]
    assert f"deploy: {report['deploy']['name']} — {report['deploy']['why']}" in result.stdout
    assert "**Warning: learned too little.**" in (run / "report.md").read_text(encoding="utf-8")
    assert "Learned too little: the teacher" in (run / "report.html").read_text(encoding="utf-8")
