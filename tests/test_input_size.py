"""The detection input size chosen from the data: small objects cover one stride-8 cell."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from PIL import Image

from edgekit.config import build_settings
from edgekit.detect.input_size import choose_size, coco_fractions, size_from_data, yolo_fractions


def _yolo(root: Path, boxes_px: list[tuple[int, int]], image: tuple[int, int] = (480, 640)) -> Path:
    """One training image of (height, width) ``image`` holding boxes of the given (width, height) in pixels."""
    h, w = image
    for sub in ("images/train", "labels/train", "images/val"):
        (root / sub).mkdir(parents=True, exist_ok=True)
    Image.new("RGB", (w, h)).save(root / "images/train/a.jpg")
    Image.new("RGB", (w, h)).save(root / "images/val/b.jpg")
    lines = [f"0 0.5 0.5 {bw / w:.6f} {bh / h:.6f}" for bw, bh in boxes_px]
    (root / "labels/train/a.txt").write_text("\n".join(lines) + "\n", encoding="utf-8")
    (root / "data.yaml").write_text("train: images/train\nval: images/val\nnames: [a]\n", encoding="utf-8")
    return root / "data.yaml"


def test_small_objects_set_the_size_from_the_stride_8_rule(tmp_path: Path) -> None:
    # 10 boxes with a 14 px shorter side in a 640 px wide photo: 8 / (14 / 640) = 366 px -> 384
    data = _yolo(tmp_path, [(14, 30)] * 10)
    fractions, longest = yolo_fractions(data)
    assert longest == 640 and np.allclose(fractions, 14 / 640, atol=1e-5)
    choice = size_from_data(str(data), None)
    assert choice is not None and choice.size == 384
    assert "stride-8" in choice.why and "366 px" in choice.why


def test_large_objects_keep_the_floor_and_tiny_ones_the_image_side() -> None:
    assert choose_size(np.full(20, 0.5), 640).size == 96
    capped = choose_size(np.full(20, 0.002), 500)
    assert capped.size == 512 and "capped at 512" in capped.why  # never above the photos' own longest side
    assert choose_size(np.zeros(0), 640).size == 96


def test_the_tenth_percentile_ignores_a_few_specks() -> None:
    fractions = np.array([0.001] * 5 + [0.1] * 95)  # 5 % specks: the common small objects are 10 % of the side
    assert choose_size(fractions, 640).size == 96


def test_coco_uses_the_json_sizes(tmp_path: Path) -> None:
    doc = {"categories": [{"id": 1, "name": "a"}], "images": [{"id": 1, "file_name": "x.jpg", "width": 640, "height": 320}],
           "annotations": [{"id": 1, "image_id": 1, "category_id": 1, "bbox": [0, 0, 10, 40]}]}
    path = tmp_path / "instances.json"
    path.write_text(json.dumps(doc), encoding="utf-8")
    fractions, longest = coco_fractions(path, None)
    assert longest == 640 and np.allclose(fractions, [10 / 640])
    assert size_from_data(str(path), None).size == 512


def test_build_settings_chooses_only_when_size_is_not_given(tmp_path: Path) -> None:
    data = str(_yolo(tmp_path, [(14, 30)] * 10))
    chosen = build_settings({}, {"task": "detect", "data": data})
    assert chosen.size == 384 and chosen.size_reason.startswith("384 px")
    given = build_settings({}, {"task": "detect", "data": data, "size": 160})
    assert given.size == 160 and given.size_reason == ""
    scenes = build_settings({}, {"task": "detect"})
    assert scenes.size == 96 and scenes.size_reason == ""


def test_a_data_yaml_or_coco_json_means_detection_unless_task_is_given(tmp_path: Path) -> None:
    data = str(_yolo(tmp_path, [(14, 30)] * 10))
    assert build_settings({}, {"data": data}).task == "detect"
    assert build_settings({"data": data}, {}).task == "detect"  # from a config file too
    assert build_settings({}, {"data": str(tmp_path)}).task == "classify"  # an ImageFolder

