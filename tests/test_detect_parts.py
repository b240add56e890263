"""Detection building blocks (issue 5, in progress): scenes, assignment, decoding, mAP, YOLO data, losses."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from edgekit.detect.assign import assign
from edgekit.detect.losses import DetectionKD, DetectionTargets, ltrb_to_xyxy
from edgekit.detect.metrics import coco_map
from edgekit.detect.postprocess import decode, grid_np, nms
from edgekit.detect.scenes import CLASSES, make_scene
from edgekit.detect.tiny_detector import STRIDES, DetectorSpec, TinyDetector, grid
from edgekit.errors import EdgekitError


def test_scenes_are_deterministic_and_boxes_fit() -> None:
    a, b = make_scene(7), make_scene(7)
    assert np.array_equal(a.image, b.image) and np.array_equal(a.boxes, b.boxes)
    assert not np.array_equal(make_scene(8).image, a.image)
    for seed in range(50):
        s = make_scene(seed)
        assert 1 <= len(s.boxes) <= 4 and len(s.boxes) == len(s.labels)
        assert (s.boxes >= 0).all() and (s.boxes <= 96).all()
        assert (s.boxes[:, 2] > s.boxes[:, 0]).all() and (s.boxes[:, 3] > s.boxes[:, 1]).all()
        assert set(s.labels.tolist()) <= set(range(len(CLASSES)))


def test_grids_agree_and_assignment_hits_the_box() -> None:
    centres, strides = grid(96)
    np_centres, np_strides = grid_np(96, list(STRIDES))
    assert np.allclose(centres.numpy(), np_centres) and np.allclose(strides.numpy(), np_strides)
    boxes, labels = torch.tensor([[10.0, 10.0, 30.0, 30.0], [40.0, 30.0, 90.0, 80.0]]), torch.tensor([2, 0])
    cls, box, positive = assign(boxes, labels, centres, strides, 3)
    assert positive.any()
    decoded = ltrb_to_xyxy(box[positive], centres[positive], strides[positive])
    owner = cls[positive].argmax(1)
    for b, k in zip(decoded, owner):  # every positive decodes back to the box of its class
        assert torch.allclose(b, boxes[0] if k == 2 else boxes[1], atol=1e-4)
    small = positive & (cls[:, 2] > 0)
    assert set(strides[small].tolist()) == {8.0}, "a 20 px box belongs to the stride-8 level"


def test_decode_and_nms() -> None:
    centres, strides = grid_np(96, list(STRIDES))
    scores = np.zeros((len(centres), 3), np.float32)
    ltrb = np.ones((len(centres), 4), np.float32)
    scores[65, 1] = 0.9  # row 5, column 5 of the stride-8 grid: away from the border
    scores[66, 1] = 0.8  # the neighbour's box overlaps (IoU 0.33 > 0.3) and is suppressed at iou 0.3
    found = decode(scores, ltrb, 96, list(STRIDES), score_threshold=0.5, iou=0.3)
    assert [d["label"] for d in found] == [1] and found[0]["score"] == pytest.approx(0.9)
    x, y = centres[65]
    assert found[0]["box"] == pytest.approx([x - 8, y - 8, x + 8, y + 8])
    boxes = np.array([[0, 0, 10, 10], [1, 1, 11, 11], [50, 50, 60, 60]], np.float32)
    assert nms(boxes, np.array([0.9, 0.8, 0.7]), 0.5).tolist() == [0, 2]


def test_coco_map_perfect_half_and_empty() -> None:
    gt = [(np.array([[10, 10, 40, 40], [50, 50, 80, 90]], np.float32), np.array([0, 1]))]
    perfect = [[{"label": 0, "score": 0.9, "box": [10, 10, 40, 40]}, {"label": 1, "score": 0.8, "box": [50, 50, 80, 90]}]]
    assert coco_map(gt, perfect, 2, (96, 96))["map50"] == pytest.approx(1.0)
    assert coco_map(gt, [perfect[0][:1]], 2, (96, 96))["map50"] == pytest.approx(0.5)
    assert coco_map(gt, [[]], 2, (96, 96)) == {"map50": 0.0, "map50_95": 0.0}


def test_tiny_detector_outputs_and_size() -> None:
    model = TinyDetector(DetectorSpec(3)).eval()
    scores, boxes = model(torch.zeros(2, 3, 96, 96))
    assert scores.shape == (2, 3, len(grid(96)[0])) and boxes.shape == (2, 4, len(grid(96)[0]))
    assert (scores >= 0).all() and (scores <= 1).all() and (boxes >= 0).all()
    assert sum(p.numel() for p in model.parameters()) < 1_000_000  # the INT8 file stays under 1 MB


def test_distillation_terms() -> None:
    torch.manual_seed(0)
    student, teacher = TinyDetector(DetectorSpec(3)), TinyDetector(DetectorSpec(3, width=0.5, neck=64))
    x = torch.rand(2, 3, 96, 96)
    centres, strides = grid(96)
    empty = DetectionTargets(torch.zeros(2, len(centres), 3), torch.zeros(2, len(centres), 4),
                             torch.zeros(2, len(centres), dtype=torch.bool), centres, strides)
    loss = DetectionKD(48, 64, temperature=2.0)
    s_out, t_out = student.forward_train(x), teacher.forward_train(x)
    alone, parts = loss(s_out, None, empty)
    assert set(parts) == {"cls", "box"}
    total, parts = loss(s_out, t_out, empty)
    assert set(parts) == {"cls", "box", "score_kd", "box_imitation", "feature"} and parts["score_kd"] > 0
    # a student identical to its teacher has nothing to learn from the score term
    _, same = loss(s_out, {**s_out, "features": t_out["features"]}, empty)
    assert same["score_kd"] == pytest.approx(0.0, abs=1e-5)
    # the quality-focal form (the teacher's scores as the soft target of the ground-truth class loss): also
    # nothing to learn from an identical teacher, and more the further the student's scores are from it
    qfl = DetectionKD(48, 64, score_loss="qfl")
    _, same = qfl(s_out, {**s_out, "features": t_out["features"]}, empty)
    assert same["score_kd"] == pytest.approx(0.0, abs=1e-6)
    like_student = {**s_out, "features": t_out["features"]}
    far, near = ({**s_out, "logits": s_out["logits"] + shift} for shift in (3.0, 1.0))
    assert qfl(far, like_student, empty)[1]["score_kd"] > qfl(near, like_student, empty)[1]["score_kd"] > 0


def _yolo(tmp: Path, label_text: str | None, names: str = "names: [a, b]\n") -> Path:
    (tmp / "images" / "train").mkdir(parents=True)
    (tmp / "images" / "val").mkdir(parents=True)
    for split in ("train", "val"):
        Image.new("RGB", (40, 20), (120, 30, 200)).save(tmp / "images" / split / "x.png")
    if label_text is not None:
        (tmp / "labels" / "train").mkdir(parents=True)
        (tmp / "labels" / "train" / "x.txt").write_text(label_text, encoding="utf-8")
    yaml = tmp / "data.yaml"
    yaml.write_text(f"path: .\ntrain: images/train\nval: images/val\n{names}", encoding="utf-8")
    return yaml


def test_yolo_loader(tmp_path: Path) -> None:
    from edgekit.detect.yolo_data import load_yolo

    data = load_yolo(_yolo(tmp_path, "1 0.5 0.5 0.5 0.5\n"), 32)
    assert data.classes == ["a", "b"] and data.counts() == {"train": 1, "val": 1} and data.eval_split == "val"
    # 40x20 letterboxed into 32: scale 0.8, 32x16 centred (8 grey rows above and below); the box follows
    assert data.splits["train"].boxes[0] == pytest.approx(np.array([[8, 12, 24, 20]], np.float32))
    image = data.splits["train"].images[0]
    assert (image[:8] == 114).all() and (image[24:] == 114).all() and (image[8:24] == (120, 30, 200)).all()
    assert data.splits["train"].original_sizes[0] == (20, 40)
    assert len(data.splits["val"].boxes[0]) == 0, "an image without a label file is background"


@pytest.mark.parametrize("labels, names, words", [
    ("0 0.5 0.5 0.5\n", "names: [a, b]\n", ("x.txt line 1", "malformed")),
    ("0 0.5 0.5 0.5 0.5\n5 0.5 0.5 0.1 0.1\n", "names: [a, b]\n", ("x.txt line 2", "class 5")),
    ("0 0.5 0.5 0.5 0.5\n", "", ("names",)),
])
def test_yolo_loader_errors(tmp_path: Path, labels: str, names: str, words: tuple[str, ...]) -> None:
    from edgekit.detect.yolo_data import load_yolo

    with pytest.raises(EdgekitError) as caught:
        load_yolo(_yolo(tmp_path, labels, names), 32)
    for word in words:
        assert word in caught.value.one_line()


def test_yolo_loader_clips_and_warns(tmp_path: Path) -> None:
    from edgekit.detect.yolo_data import load_yolo

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        data = load_yolo(_yolo(tmp_path, "0 0.9 0.5 0.4 0.4\n"), 32)
    assert any("clipped" in str(w.message) for w in caught)
    assert data.splits["train"].boxes[0][0, 2] == pytest.approx(32.0)


def test_yolo_missing_split_folder(tmp_path: Path) -> None:
    from edgekit.detect.yolo_data import load_yolo

    yaml = _yolo(tmp_path, None)
    yaml.write_text("train: images/train\nval: images/nope\nnames: [a]\n", encoding="utf-8")
    with pytest.raises(EdgekitError, match="val folder"):
        load_yolo(yaml, 32)


def test_qat_prepared_tiny_detector_converts() -> None:
    """PT2E QAT folds conv-BN on convert; a module called twice in the graph used to break that."""
    from edgekit.quantize import pt2e

    torch.manual_seed(0)
    model = TinyDetector(DetectorSpec(3)).eval()
    prepared = pt2e.prepare(model, torch.rand(2, 3, 96, 96), "qat")
    pt2e.to_train(prepared)
    prepared(torch.rand(2, 3, 96, 96))
    pt2e.to_eval(prepared)
    scores, boxes = pt2e.convert(prepared)(torch.rand(1, 3, 96, 96))
    assert scores.shape == (1, 3, len(grid(96)[0])) and boxes.shape == (1, 4, len(grid(96)[0]))


def test_quality_focal_loss_by_hand() -> None:
    from edgekit.detect.losses import box_iou_pairs, quality_focal_loss

    # sigmoid(0) = 0.5: against target 0.5 nothing to learn; against 1, BCE ln 2 scaled by (1 - 0.5)^2
    assert float(quality_focal_loss(torch.zeros(1), torch.tensor([0.5]))) == pytest.approx(0.0, abs=1e-7)
    assert float(quality_focal_loss(torch.zeros(2), torch.tensor([1.0, 0.0]))) == pytest.approx(2 * 0.25 * np.log(2))
    a = torch.tensor([[0.0, 0.0, 2.0, 2.0], [0.0, 0.0, 1.0, 1.0]])
    b = torch.tensor([[1.0, 0.0, 3.0, 2.0], [2.0, 2.0, 3.0, 3.0]])
    assert box_iou_pairs(a, b).tolist() == pytest.approx([2 / 6, 0.0])


def test_fcos_teacher_boxes_match_torchvision_decoding() -> None:
    """The FCOS adapter's boxes, decoded on TinyDetector's grid, are torchvision's own decoded boxes."""
    from torchvision.models.detection.image_list import ImageList

    from edgekit.detect.torchvision_teacher import FCOSSpec, FCOSTeacher

    torch.manual_seed(0)
    teacher = FCOSTeacher(FCOSSpec(3)).eval()
    with torch.no_grad():  # distances of a few strides, as a trained FCOS predicts (random init gives ~0)
        teacher.fcos.head.regression_head.bbox_reg.bias.fill_(2.0)
    x = torch.rand(1, 3, 64, 64)
    with torch.no_grad():
        out = teacher.forward_train(x)
        levels = out["features"]
        reg, _ = teacher.fcos.head.regression_head(levels)
        every_level = list(teacher.fcos.backbone((x - teacher.mean) / teacher.std).values())
        anchors = teacher.fcos.anchor_generator(ImageList(x, [(64, 64)]), every_level)[0][:reg.shape[1]]
        theirs = teacher.fcos.box_coder.decode(reg[0], anchors)
    centres, strides = grid(64)
    ours = ltrb_to_xyxy(out["boxes"][0], centres, strides)
    unclipped = (reg[0][:, 2:] >= 0.5).all(1)  # where right/bottom stay >= 0 after the half-stride shift
    assert unclipped.any()
    assert torch.allclose(ours[unclipped], theirs[unclipped], atol=1e-3)


def test_decode_matches_nms_per_class_then_best_100() -> None:
    """The single-pass decoder gives exactly what NMS per class followed by the best 100 gives."""
    rng = np.random.default_rng(3)
    size, strides = 64, [8, 16]
    a = sum((-(-size // s)) ** 2 for s in strides)
    scores = rng.random((a, 20)).astype(np.float32)
    ltrb = rng.random((a, 4)).astype(np.float32) * 3
    centres, s = grid_np(size, strides)
    d = ltrb * s[:, None]
    boxes = np.clip(np.stack([centres[:, 0] - d[:, 0], centres[:, 1] - d[:, 1], centres[:, 0] + d[:, 2],
                              centres[:, 1] + d[:, 3]], 1), 0, size)
    expected = []
    for label in range(scores.shape[1]):
        keep = scores[:, label] >= 0.001
        for i in nms(boxes[keep], scores[keep, label], 0.5):
            expected.append((float(scores[keep, label][i]), label))
    expected = sorted(expected, key=lambda e: -e[0])[:100]
    got = decode(scores, ltrb, size, strides, 0.001, 0.5, multi_label=True)  # as mAP evaluation decodes
    assert [(d["score"], d["label"]) for d in got] == expected
    assert len(got) == 100


def test_decode_gives_a_location_one_box_unless_multi_label() -> None:
    """Two classes over the threshold at one location were two boxes on one object in apps' predictions."""
    centres, _ = grid_np(96, list(STRIDES))
    scores = np.zeros((len(centres), 3), np.float32)
    ltrb = np.ones((len(centres), 4), np.float32)
    scores[65, 1], scores[65, 2] = 0.9, 0.6
    found = decode(scores, ltrb, 96, list(STRIDES), score_threshold=0.5, iou=0.5)
    assert [(d["label"], round(d["score"], 2)) for d in found] == [(1, 0.9)]
    both = decode(scores, ltrb, 96, list(STRIDES), score_threshold=0.5, iou=0.5, multi_label=True)
    assert [(d["label"], round(d["score"], 2)) for d in both] == [(1, 0.9), (2, 0.6)]
    scores[65, 1] = 0.4  # the best class under the threshold: nothing there, even when another class is above it
    scores[65, 2] = 0.45
    assert decode(scores, ltrb, 96, list(STRIDES), score_threshold=0.5) == []


def test_letterbox_boxes_map_back_to_the_original_pixels() -> None:
    from edgekit.data.preprocess import letterbox_boxes, letterbox_fit, unletterbox_boxes

    assert letterbox_fit(480, 640, (96, 96)) == (0.15, 72, 96, 0, 12)
    box = [100.0, 50.0, 300.0, 400.0]
    inside = letterbox_boxes(np.array([box]), 480, 640, (96, 96))[0]
    assert inside.tolist() == pytest.approx([15, 19.5, 45, 72])
    assert unletterbox_boxes(inside, 480, 640, (96, 96))[0].tolist() == pytest.approx(box)
    assert unletterbox_boxes([[0, 0, 96, 96]], 480, 640, (96, 96))[0].tolist() == pytest.approx([0, 0, 640, 480])  # clipped
