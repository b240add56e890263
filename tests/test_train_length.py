"""The detection student's epochs chosen from the data: as many steps as the built-in scenes take."""

from __future__ import annotations

import json
from pathlib import Path

from PIL import Image

from edgekit.config import build_settings
from edgekit.detect.train_length import MIN_STEPS, distill_epochs, training_images


def _yolo(root: Path, train_images: int) -> Path:
    for sub in ("images/train", "labels/train", "images/val"):
        (root / sub).mkdir(parents=True, exist_ok=True)
    for i in range(train_images):
        Image.new("RGB", (64, 48)).save(root / f"images/train/{i}.png")
        (root / f"labels/train/{i}.txt").write_text("0 0.5 0.5 0.5 0.5\n", encoding="utf-8")
    Image.new("RGB", (64, 48)).save(root / "images/val/v.png")
    (root / "data.yaml").write_text("train: images/train\nval: images/val\nnames: [a]\n", encoding="utf-8")
    return root / "data.yaml"


def test_few_images_get_more_epochs_up_to_twice_the_default() -> None:
    assert MIN_STEPS == 750  # the built-in scenes' 10 epochs of 75 batches
    epochs, why = distill_epochs(448, 16, 10)   # 28 steps an epoch: 27 epochs wanted, capped
    assert epochs == 20 and "28 steps an epoch" in why and "take 27" in why and "capped at 20" in why
    assert distill_epochs(800, 16, 10)[0] == 15  # 50 steps an epoch
    assert "capped" not in distill_epochs(800, 16, 10)[1]
    kept, why = distill_epochs(1200, 16, 10)    # the scenes themselves
    assert kept == 10 and "already take" in why
    assert distill_epochs(20000, 16, 10)[0] == 10  # never fewer than the default


def test_the_training_split_is_counted(tmp_path: Path) -> None:
    assert training_images(str(_yolo(tmp_path / "y", 3)), None) == 3
    coco = tmp_path / "instances.json"
    coco.write_text(json.dumps({"categories": [{"id": 1, "name": "a"}], "annotations": [],
                                "images": [{"id": i, "file_name": f"{i}.jpg"} for i in range(10)]}), encoding="utf-8")
    assert training_images(str(coco), None) == 8  # the loader trains on 80 %
    assert training_images(str(tmp_path / "missing.yaml"), None) is None


def test_build_settings_chooses_only_when_no_epochs_are_given(tmp_path: Path) -> None:
    data = str(_yolo(tmp_path, 5))  # 1 step an epoch at batch 16: capped at 20
    chosen = build_settings({}, {"task": "detect", "data": data})
    assert chosen.distill_epochs == 20 and chosen.distill_epochs_reason.startswith("20 epochs: 5 training images")
    assert chosen.teacher_epochs == 12  # the teacher's stay
    for given in ({"epochs": 3}, {"distill_epochs": 4}):
        s = build_settings({}, {"task": "detect", "data": data, **given})
        assert s.distill_epochs == next(iter(given.values())) and s.distill_epochs_reason == ""
    from_file = build_settings({"distill_epochs": 7}, {"task": "detect", "data": data})
    assert from_file.distill_epochs == 7 and from_file.distill_epochs_reason == ""
    scenes = build_settings({}, {"task": "detect"})
    assert scenes.distill_epochs == 10 and scenes.distill_epochs_reason == ""


def test_the_plan_says_why(tmp_path: Path) -> None:
    from conftest import run_cli

    data = _yolo(tmp_path, 5)
    result = run_cli(["compress", "--data", str(data), "--dry-run", "--out", str(tmp_path / "run")], cwd=tmp_path)
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    assert "student epochs: 20 epochs: 5 training images at batch 16" in " ".join(result.stdout.split())


def test_a_config_cannot_set_the_reason(tmp_path: Path) -> None:
    from conftest import run_cli

    (tmp_path / "edgekit.toml").write_text('distill_epochs_reason = "because"\n', encoding="utf-8")
    result = run_cli(["compress", "--task", "detect", "--config", str(tmp_path / "edgekit.toml"), "--dry-run",
                      "--out", str(tmp_path / "run")], cwd=tmp_path)
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert "unknown key 'distill_epochs_reason'" in result.stdout + result.stderr
