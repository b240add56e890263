"""Say when a model learned too little to be worth deploying.

A run can finish every stage and still hand over a model that learned next to nothing: a detector at mAP50 0.02 on
real photos, a classifier near chance. Its report used to end with "deploy: model_int8.tflite — fastest ..." all
the same. The task sets the level (``Task.useful_level``, carried in report.json as ``useful``): a floor under which
a model is not useful (near chance for a classifier; a low mAP50 for a detector), and the share of the teacher's
metric a student must keep. Each model that falls short gets a ``warning:`` line, the reports a banner, and the
deploy sentence the caveat. A budget on the metric still makes it exit 1, as before; this only speaks.
"""

from __future__ import annotations

from typing import Any


def _value(report: dict[str, Any], value: float) -> str:
    return f"{value:.3f}" if "metric" in report else f"{100 * value:.2f} %"


def learned_little(report: dict[str, Any]) -> list[str]:
    """One sentence per model of the run below the task's useful level (none when the report has no level)."""
    level = report.get("useful")
    if not level:
        return []
    name = (report.get("metric") or {}).get("name", "accuracy")
    floor, share = float(level["floor"]), float(level["of_teacher"])
    found: list[str] = []
    teacher = report.get("teacher") or {}
    if teacher.get("accuracy") is not None and teacher["accuracy"] < floor:
        found.append(f"the teacher's {name} is {_value(report, teacher['accuracy'])}, under {_value(report, floor)} "
                     f"({level['floor_means']}): it has little to teach, and distilling from it can leave the "
                     "student worse than training alone (--alpha 0); a stronger teacher (--teacher, --pretrained) "
                     "is the fix")
    student = next((s for s in report.get("students", []) if s.get("name") == "student_fp32"), None)
    if student and student.get("accuracy") is not None:
        if student["accuracy"] < floor:
            found.append(f"the FP32 student's {name} is {_value(report, student['accuracy'])}, under "
                         f"{_value(report, floor)} ({level['floor_means']})")
        elif teacher.get("accuracy") and student["accuracy"] < share * teacher["accuracy"]:
            found.append(f"the FP32 student's {name} {_value(report, student['accuracy'])} is under {share:.0%} of the "
                         f"teacher's {_value(report, teacher['accuracy'])}")
    return found


def caveat(findings: list[str]) -> str:
    """What the deploy sentence adds when the run learned too little."""
    return "but the models learned too little to be useful: " + "; ".join(findings)
