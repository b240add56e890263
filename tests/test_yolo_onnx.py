"""A YOLO ONNX teacher (detect/yolo_onnx.py): layouts, metadata, letterbox, decoding, the student's grid.

The YOLO files are tiny torch modules that return a hand-made prediction tensor, exported with torch's
TorchScript exporter; the bad-shape files are bare ONNX graphs (only read, never run).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import pytest
import torch
from onnx import TensorProto, helper

from edgekit.detect.assign import assign
from edgekit.detect.tiny_detector import grid
from edgekit.detect.yolo_onnx import (YoloOnnxTeacher, check_classes, letterbox, read_yolo_spec,
                                      to_student_grid)
from edgekit.errors import EdgekitError

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")  # torch's TorchScript ONNX exporter
FLOOR_LOGIT = float(torch.logit(torch.tensor(1e-4)))
ULTRALYTICS_META = {"author": "Ultralytics", "task": "detect", "stride": "32", "imgsz": "[64, 64]",
                    "names": "{0: 'fish', 1: 'shark'}", "args": "{'batch': 1, 'nms': False}", "end2end": "False"}

# YOLOv8 rows cx, cy, w, h, score0, score1 over 8 anchors (input pixels of a 64 x 64 input).
V8_BOXES = [(32, 32, 20, 10, 0.9, 0.1), (10, 20, 8, 8, 0.2, 0.7), (2, 10, 10, 4, 0.3, 0.3)]
# YOLOv5 rows cx, cy, w, h, objectness, 3 class scores over 10 anchors (a 640 x 640 input).
V5_BOXES = [(320, 320, 100, 60, 0.8, 0.5, 0.25, 1.0), (100, 150, 40, 20, 0.5, 0.2, 0.9, 0.1)]


class Fixed(torch.nn.Module):
    """Returns ``pred`` for every image; the input only passes through a zero (broadcast, so that ONNX shape
    inference keeps the two static dimensions)."""

    def __init__(self, pred: torch.Tensor) -> None:
        super().__init__()
        self.register_buffer("pred", pred)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return 0 * x.mean((1, 2, 3))[:, None, None] + self.pred


def _export(pred: torch.Tensor, size: int, path: Path, dynamic_batch: bool = False,
            meta: dict[str, str] | None = None) -> Path:
    axes = {"images": {0: "batch"}, "output0": {0: "batch"}} if dynamic_batch else None
    torch.onnx.export(Fixed(pred), (torch.zeros(1, 3, size, size),), str(path), dynamo=False, opset_version=13,
                      input_names=["images"], output_names=["output0"], dynamic_axes=axes)
    if meta:
        _add_meta(path, meta)
    return path


def _add_meta(path: Path, meta: dict[str, str]) -> None:
    model = onnx.load(str(path))
    for key, value in meta.items():
        prop = model.metadata_props.add()
        prop.key, prop.value = key, value
    onnx.save(model, str(path))


def _v8_file(tmp_path: Path) -> Path:
    pred = torch.zeros(1, 6, 8)
    pred[0, 4:, 3:] = 0.01
    for k, row in enumerate(V8_BOXES):
        pred[0, :, k] = torch.tensor(row)
    return _export(pred, 64, tmp_path / "yolov8.onnx", meta=ULTRALYTICS_META)


def _v5_file(tmp_path: Path) -> Path:
    pred = torch.zeros(1, 10, 8)
    for k, row in enumerate(V5_BOXES):
        pred[0, k] = torch.tensor(row)
    return _export(pred, 640, tmp_path / "yolov5.onnx", dynamic_batch=True)


def _graph_file(path: Path, outputs: list[list], image: list | None = None, meta: dict[str, str] | None = None) -> Path:
    """A bare graph with these input and output shapes (strings are symbolic dims): for reading only."""
    graph = helper.make_graph([], "g", [helper.make_tensor_value_info("images", TensorProto.FLOAT,
                                                                      image or [1, 3, 64, 64])],
                              [helper.make_tensor_value_info(f"output{i}", TensorProto.FLOAT, shape)
                               for i, shape in enumerate(outputs)])
    model = helper.make_model(graph)
    for key, value in (meta or {}).items():
        prop = model.metadata_props.add()
        prop.key, prop.value = key, value
    onnx.save(model, str(path))
    return path


def _xyxy(cx: float, cy: float, w: float, h: float) -> list[float]:
    return [cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2]


# ------------------------------------------------------------------------------------------------ reading


def test_reads_v8_layout_and_ultralytics_metadata(tmp_path: Path) -> None:
    spec = read_yolo_spec(_v8_file(tmp_path))
    assert (spec.layout, spec.num_classes, spec.names) == ("v8", 2, ["fish", "shark"])
    assert (spec.input_size, spec.stride, spec.batch, spec.output_name) == ((64, 64), 32, 1, "output0")


def test_reads_v5_layout_without_metadata(tmp_path: Path) -> None:
    spec = read_yolo_spec(_v5_file(tmp_path))
    assert (spec.layout, spec.num_classes, spec.names) == ("v5", 3, None)
    assert (spec.input_size, spec.stride, spec.batch) == ((640, 640), 32, None)


def test_dynamic_export_takes_n_from_the_symbolic_dim_and_size_from_imgsz(tmp_path: Path) -> None:
    meta = {"task": "detect", "imgsz": "[320, 256]", "names": str({i: f"c{i}" for i in range(80)})}
    path = _graph_file(tmp_path / "dyn.onnx", [["batch", 84, "anchors"]], ["batch", 3, "height", "width"], meta)
    spec = read_yolo_spec(path)
    assert (spec.layout, spec.num_classes, spec.input_size, spec.batch) == ("v8", 80, (320, 256), None)
    v5 = read_yolo_spec(_graph_file(tmp_path / "dyn5.onnx", [["batch", "anchors", 85]]))
    assert (v5.layout, v5.num_classes) == ("v5", 80)


@pytest.mark.parametrize(("outputs", "match"), [
    ([[1, 85]], r"outputs \[1, 85\] \(output0\): no known YOLO layout \(rank 2"),
    ([[1, 3, 4]], r"outputs \[1, 3, 4\] \(output0\): no known YOLO layout \(3 channels"),
    ([[1, 7, 7]], r"outputs \[1, 7, 7\] \(output0\): no known YOLO layout \(dimensions 1 and 2 are equal"),
    ([[1, 8400, 5]], r"outputs \[1, 8400, 5\] \(output0\): no known YOLO layout \(5 channels"),
    ([[1, "n", "c"]], r"outputs \[1, n, c\] \(output0\).*both symbolic"),
    ([[1, 3], [1, 2, 2, 2]], r"outputs \[1, 3\] \(output0\), \[1, 2, 2, 2\] \(output1\): no known YOLO layout"),
])
def test_unknown_layouts_are_refused_naming_the_shapes(tmp_path: Path, outputs: list, match: str) -> None:
    with pytest.raises(EdgekitError, match=match) as info:
        read_yolo_spec(_graph_file(tmp_path / "bad.onnx", outputs))
    assert "[1, N, 5+C]" in info.value.fix and "[1, 4+C, N]" in info.value.fix


def test_a_detection_output_beside_others_is_found(tmp_path: Path) -> None:
    spec = read_yolo_spec(_graph_file(tmp_path / "two.onnx", [[1, 3], [1, 6, 8400]]))
    assert (spec.layout, spec.num_classes, spec.output_name) == ("v8", 2, "output1")


def test_metadata_problems_are_named(tmp_path: Path) -> None:
    names3 = {"names": "{0: 'a', 1: 'b', 2: 'c'}"}
    with pytest.raises(EdgekitError, match=r"names 3 classes .* \[1, 6, 8400\] has 2"):
        read_yolo_spec(_graph_file(tmp_path / "n.onnx", [[1, 6, 8400]], meta=names3))
    with pytest.raises(EdgekitError, match="not a Python literal"):  # literal_eval refuses code
        read_yolo_spec(_graph_file(tmp_path / "e.onnx", [[1, 6, 8400]], meta={"names": "__import__('os')"}))
    with pytest.raises(EdgekitError, match=r"takes images \[1, 3, h, w\] of no fixed size.*imgsz") as info:
        read_yolo_spec(_graph_file(tmp_path / "s.onnx", [[1, 6, 8400]], [1, 3, "h", "w"]))
    assert "imgsz=640" in info.value.fix
    with pytest.raises(EdgekitError, match="'segment' model"):
        read_yolo_spec(_graph_file(tmp_path / "t.onnx", [[1, 38, 8400]], meta={"task": "segment"}))


def test_files_with_nms_are_refused(tmp_path: Path) -> None:
    for i, meta in enumerate([{"task": "detect", "args": "{'nms': True}"}, {"task": "detect"},
                              {"task": "detect", "end2end": "True"}]):
        with pytest.raises(EdgekitError, match=r"outputs \[1, 300, 6\]: final detections") as info:
            read_yolo_spec(_graph_file(tmp_path / f"nms{i}.onnx", [[1, 300, 6]], meta=meta))
        assert "nms=False" in info.value.fix


def test_check_classes_names_both_counts(tmp_path: Path) -> None:
    spec = read_yolo_spec(_v8_file(tmp_path))
    check_classes(spec, 2, tmp_path / "yolov8.onnx", ["fish", "shark"])
    data = ["fish", "shark", "ray", "eel", "crab", "squid", "seal"]
    with pytest.raises(EdgekitError, match=r"teacher yolov8.onnx predicts 2 classes, the data has 7 "
                                           r"\(fish, shark, ray, eel, crab, \.\.\.\)") as info:
        check_classes(spec, len(data), tmp_path / "yolov8.onnx", data)
    assert info.value.fix == "train/export the YOLO model on this data set's classes"
    assert "\n" not in str(info.value)


# -------------------------------------------------------------------------------------------------- letterbox


def test_letterbox_pads_top_and_bottom_with_grey() -> None:
    image = np.random.default_rng(0).integers(0, 256, (480, 640, 3), dtype=np.uint8)
    x, r, pad = letterbox(image, (640, 640))
    assert x.shape == (1, 3, 640, 640) and x.dtype == np.float32 and r == 1.0 and pad == (0, 80)
    assert np.allclose(x[0, :, :80], 114 / 255) and np.allclose(x[0, :, 560:], 114 / 255)
    assert np.allclose(x[0, :, 80:560], image.transpose(2, 0, 1) / 255)


def test_letterbox_keeps_the_aspect_ratio() -> None:
    x, r, pad = letterbox(np.full((2, 100, 50, 3), 200, np.uint8), (64, 64))
    assert x.shape == (2, 3, 64, 64) and r == pytest.approx(0.64) and pad == (16, 0)  # 100x50 -> 64x32
    assert np.allclose(x[:, :, :, :16], 114 / 255) and np.allclose(x[:, :, :, 48:], 114 / 255)
    assert np.allclose(x[:, :, :, 16:48], 200 / 255)
    _, _, odd = letterbox(np.zeros((64, 61, 3), np.uint8), (64, 64))  # 3 columns: 1 left, 2 right, as Ultralytics
    assert odd == (1, 0)


# ---------------------------------------------------------------------------------------------------- predict


def test_v8_predict_undoes_the_letterbox(tmp_path: Path) -> None:
    teacher = YoloOnnxTeacher(_v8_file(tmp_path), threads=1)
    image = np.zeros((96, 128, 3), np.uint8)  # into 64 x 64: r = 0.5, 64 x 48 content, 8 rows on top
    results = teacher.predict(np.stack([image] * 3))  # fixed batch 1: fed one at a time
    assert len(results) == 3
    boxes, scores = results[0]
    assert boxes.shape == (8, 4) and scores.shape == (8, 2)
    expected = [[(x1 - 0) / 0.5, (y1 - 8) / 0.5, (x2 - 0) / 0.5, (y2 - 8) / 0.5]
                for x1, y1, x2, y2 in (_xyxy(*row[:4]) for row in V8_BOXES)]
    expected[2] = [0.0, 0.0, 14.0, 8.0]  # x1 = -3 and y1 = 0 in input pixels: clipped to the image
    assert np.allclose(boxes[:3], expected, atol=1e-3)
    assert np.allclose(scores[:3], [row[4:] for row in V8_BOXES], atol=1e-6)
    assert np.allclose(scores[3:], 0.01)
    assert all(np.array_equal(b, boxes) and np.array_equal(s, scores) for b, s in results[1:])


def test_v5_predict_scores_are_objectness_times_class(tmp_path: Path) -> None:
    teacher = YoloOnnxTeacher(_v5_file(tmp_path), threads=1, batch_size=2)
    image = np.zeros((480, 640, 3), np.uint8)  # into 640 x 640: r = 1, 80 rows on top
    results = teacher.predict([image, image, image])  # dynamic batch: fed 2 then 1
    assert len(results) == 3
    boxes, scores = results[2]
    assert boxes.shape == (10, 4) and scores.shape == (10, 3)
    expected = [[x1, y1 - 80, x2, y2 - 80] for x1, y1, x2, y2 in (_xyxy(*row[:4]) for row in V5_BOXES)]
    assert np.allclose(boxes[:2], expected, atol=1e-3)
    assert np.allclose(scores[:2], [[row[4] * c for c in row[5:]] for row in V5_BOXES], atol=1e-6)
    assert np.allclose(scores[2:], 0.0)


# ------------------------------------------------------------------------------------------ the student's grid


def _cells(size: int, stride: int, cols: list[int], rows: list[int]) -> list[int]:
    """Indices in grid(size)'s order of the cells at these rows and columns of one level."""
    offset = 0 if stride == 8 else (size // 8) ** 2
    return [offset + i * (size // stride) + j for i in rows for j in cols]


def test_one_box_teaches_the_cells_whose_centre_it_contains() -> None:
    boxes = torch.tensor([[40.0, 40.0, 100.0, 72.0]])  # in a 128 x 128 image: (20, 20, 50, 36) at 64, side 30
    scores = torch.tensor([[0.6, 0.3]])
    logits, ltrb = to_student_grid(boxes, scores, (128, 128), 64)
    centres, strides = grid(64)
    assert logits.shape == (80, 2) and ltrb.shape == (80, 4)
    hit = _cells(64, 8, [3, 4, 5], [3]) + _cells(64, 16, [1, 2], [1])  # side 30 is in both levels' ranges
    assert sorted(torch.nonzero(ltrb.sum(1) > 0).flatten().tolist()) == hit
    assert torch.allclose(logits[hit], torch.logit(scores).expand(len(hit), -1))
    cx, cy = centres[hit].T
    want = torch.stack([cx - 20, cy - 20, 50 - cx, 36 - cy], 1) / strides[hit, None]
    assert torch.allclose(ltrb[hit], want)
    assert torch.allclose(ltrb[27], torch.tensor([1.0, 1.0, 2.75, 1.0]))  # centre (28, 28), stride 8
    rest = [a for a in range(80) if a not in hit]
    assert torch.all(logits[rest] == FLOOR_LOGIT) and torch.all(ltrb[rest] == 0)


def test_with_a_centre_radius_the_teacher_teaches_the_cells_the_ground_truth_would() -> None:
    boxes = torch.tensor([[4.0, 6.0, 120.0, 50.0], [70.0, 80.0, 90.0, 96.0]])  # 116 wide (stride 16), 20 (stride 8)
    scores = torch.tensor([[0.8, 0.1], [0.2, 0.6]])
    logits, ltrb = to_student_grid(boxes, scores, (128, 128), 128, centre_radius=1.5)
    centres, strides = grid(128)
    _, box_t, positive = assign(boxes, torch.tensor([0, 1]), centres, strides, 2)
    assert positive.sum() > 0 and torch.equal(ltrb.abs().sum(1) > 0, positive)
    assert torch.allclose(ltrb[positive], box_t[positive])
    assert torch.all(logits[~positive] == FLOOR_LOGIT)
    _, everywhere = to_student_grid(boxes, scores, (128, 128), 128)  # without: every cell inside the box
    assert (everywhere.abs().sum(1) > 0).sum() > positive.sum()  # 25 cells against 13


def test_boxes_go_to_the_levels_of_their_size() -> None:
    boxes = np.array([[18.0, 18.0, 34.0, 34.0]], np.float32)  # side 16: stride 8 only (stride 16 takes >= 28)
    scores = np.array([[0.9]], np.float32)
    _, ltrb = to_student_grid(boxes, scores, (64, 64), 64)
    assert sorted(torch.nonzero(ltrb.sum(1) > 0).flatten().tolist()) == _cells(64, 8, [2, 3], [2, 3])
    _, everywhere = to_student_grid(boxes, scores, (64, 64), 64, scale_ranges=False)
    assert sorted(torch.nonzero(everywhere.sum(1) > 0).flatten().tolist()) == (
        _cells(64, 8, [2, 3], [2, 3]) + _cells(64, 16, [1], [1]))


def test_the_higher_scoring_box_wins_an_overlap() -> None:
    boxes = torch.tensor([[0.0, 0.0, 24.0, 8.0], [8.0, 0.0, 32.0, 8.0], [0.0, 0.0, 64.0, 64.0]])
    scores = torch.tensor([[0.6, 0.1], [0.2, 0.8], [0.0005, 0.0009]])  # the last is below the 0.001 prefilter
    logits, ltrb = to_student_grid(boxes, scores, (64, 64), 64, scale_ranges=False)
    assert torch.allclose(logits[0], torch.logit(scores[0]))       # centre (4, 4): only the first
    assert torch.allclose(logits[1], torch.logit(scores[1]))       # centre (12, 4): both; 0.8 beats 0.6
    assert torch.allclose(ltrb[1], torch.tensor([4.0, 4.0, 20.0, 4.0]) / 8)
    assert torch.allclose(logits[3], torch.logit(scores[1]))       # centre (28, 4): only the second
    assert torch.all(logits[8:64] == FLOOR_LOGIT)                  # rows below: the big box was dropped


def test_letterboxed_student_input_moves_the_boxes_too() -> None:
    boxes = torch.tensor([[8.0, 0.0, 40.0, 20.0]])  # a 32 x 64 image letterboxed to 64: r = 1, 16 rows on top
    _, ltrb = to_student_grid(boxes, torch.tensor([[0.9]]), (32, 64), 64, letterboxed=True, scale_ranges=False)
    hit = _cells(64, 8, [1, 2, 3, 4], [2, 3]) + _cells(64, 16, [1], [1])  # the box is (8, 16, 40, 36) there
    assert sorted(torch.nonzero(ltrb.sum(1) > 0).flatten().tolist()) == hit
    assert torch.allclose(ltrb[_cells(64, 8, [1], [2])[0]], torch.tensor([4.0, 4.0, 28.0, 16.0]) / 8)
    _, stretched = to_student_grid(boxes, torch.tensor([[0.9]]), (32, 64), 64, scale_ranges=False)
    assert not torch.equal(stretched, ltrb)  # stretched: (8, 0, 40, 40)


def test_no_predictions_teach_background() -> None:
    logits, ltrb = to_student_grid(np.zeros((0, 4), np.float32), np.zeros((0, 3), np.float32), (50, 70), 32)
    assert logits.shape == (16 + 4, 3) and torch.all(logits == FLOOR_LOGIT) and torch.all(ltrb == 0)
