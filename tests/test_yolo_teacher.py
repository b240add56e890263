"""A YOLO ONNX export as the detection teacher: it runs on the student's (augmented) batch through onnxruntime and
teaches on the student's grid; a whole `edgekit compress --teacher yolo.onnx` runs with feature imitation off."""

from __future__ import annotations

import json
from pathlib import Path

import onnx
import pytest
import torch

from conftest import make_yolo_scenes, run_cli

from edgekit.detect.assign import CENTRE_RADIUS
from edgekit.detect.scenes import CLASSES
from edgekit.detect.tiny_detector import grid
from edgekit.detect.yolo_onnx import to_student_grid
from edgekit.detect.yolo_teacher import YoloGridTeacher

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")  # torch's TorchScript ONNX exporter
IMGSZ = 64


class TinyYolo(torch.nn.Module):
    """A YOLOv8-layout detector: [1, 4+C, N] with one anchor per stride-8 cell (cx, cy, w, h in input pixels,
    sigmoid class scores), the predictions depending on the image."""

    def __init__(self, classes: int) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.net = torch.nn.Conv2d(3, 4 + classes, 8, stride=8)
        ys, xs = torch.meshgrid(torch.arange(IMGSZ // 8), torch.arange(IMGSZ // 8), indexing="ij")
        self.register_buffer("centres", torch.stack([xs, ys]).reshape(2, -1).float() * 8 + 4)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.net(x).flatten(2)
        xy = self.centres + 4 * torch.tanh(out[:, :2])
        wh = 4 + 28 * torch.sigmoid(out[:, 2:4])
        return torch.cat([xy, wh, torch.sigmoid(3 * out[:, 4:])], 1)


def tiny_yolo(path: Path, classes: int = len(CLASSES)) -> Path:
    torch.onnx.export(TinyYolo(classes).eval(), (torch.zeros(1, 3, IMGSZ, IMGSZ),), str(path), dynamo=False,
                      opset_version=13, input_names=["images"], output_names=["output0"])
    model = onnx.load(str(path))
    for key, value in {"task": "detect", "imgsz": f"[{IMGSZ}, {IMGSZ}]", "stride": "8",
                       "names": str(dict(enumerate(CLASSES[:classes])))}.items():
        prop = model.metadata_props.add()
        prop.key, prop.value = key, value
    onnx.save(model, str(path))
    return path


def test_the_teacher_runs_on_the_students_batch_and_teaches_on_its_grid(tmp_path: Path) -> None:
    path = tiny_yolo(tmp_path / "yolo.onnx")
    teacher = YoloGridTeacher(path, (0.0, 0.0, 0.0), (1.0, 1.0, 1.0))
    x = torch.rand(2, 3, 32, 32)
    out = teacher.forward_train(x)
    cells = len(grid(32)[0])
    assert out["logits"].shape == (2, cells, len(CLASSES)) and out["boxes"].shape == (2, cells, 4)
    assert out["features"] is None and teacher.parameter_count == sum(t.numel() for t in TinyYolo(3).state_dict().values())
    # by hand: the 32 px view scaled to the file's 64 px input, decoded, scaled back and clipped, on the grid
    with torch.no_grad():
        raw = TinyYolo(len(CLASSES))(torch.nn.functional.interpolate(x[:1] * 255, size=IMGSZ, mode="bilinear",
                                                                      align_corners=False) / 255)[0]
    cx, cy, w, h = raw[:4] / 2
    boxes = torch.stack([cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2], 1).clamp(0, 32)  # clipped, as Ultralytics
    logits, ltrb = to_student_grid(boxes, raw[4:].T, (32, 32), 32, centre_radius=CENTRE_RADIUS)
    assert torch.allclose(out["logits"][0], logits, atol=1e-3) and torch.allclose(out["boxes"][0], ltrb, atol=1e-3)
    scores, dist = teacher(x)  # channel-major, as a TinyDetector's files
    assert torch.allclose(scores, torch.sigmoid(out["logits"]).transpose(1, 2)) and dist.shape == (2, 4, cells)


def test_compress_distils_from_a_yolo_file(tmp_path: Path, edgekit_script: Path) -> None:
    yaml = make_yolo_scenes(tmp_path / "data", {"train": 16, "val": 4, "test": 4})
    (tmp_path / "edgekit.toml").write_text("latency_runs = 3\nlatency_seconds = 0.3\nbatch_size = 8\n", encoding="utf-8")
    teacher = tiny_yolo(tmp_path / "best.onnx")
    result = run_cli(["compress", "--task", "detect", "--data", str(yaml), "--teacher", str(teacher), "--size", "32",
                      "--epochs", "1", "--width", "0.25", "--config", str(tmp_path / "edgekit.toml"),
                      "--out", str(tmp_path / "run")], cwd=tmp_path, timeout=900)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert "feature imitation off" in " ".join((result.stdout + result.stderr).split())  # stage lines: stderr
    run = tmp_path / "run"
    kept = run / "teacher" / "yolo.onnx"
    assert kept.read_bytes() == teacher.read_bytes()
    record = json.loads((run / "teacher" / "stage.json").read_text(encoding="utf-8"))["result"]
    assert record["source"].startswith("YOLO ONNX best.onnx") and record["arch"] == "YOLOv8/11 ONNX 64x64"
    distill = json.loads((run / "distill" / "stage.json").read_text(encoding="utf-8"))["result"]
    assert distill["feature_imitation"] is False
    assert all(epoch.get("feature", 0.0) == 0.0 for epoch in distill["history"])
    assert (run / "artifacts" / "model_int8.tflite").is_file()
    assert "feature imitation off" in (run / "report.md").read_text(encoding="utf-8")  # the teacher's source says so
    graph = json.loads((run / "report.json").read_text(encoding="utf-8"))["teacher"]["graph"]
    assert graph["macs"] == 86024  # read from the kept file (one 8x8 conv), not re-exported through torch
    assert "training mode" not in result.stderr


def test_the_detect_task_reads_the_kept_yolo_file_by_its_name() -> None:
    from edgekit.detect.yolo_teacher import FILE
    from edgekit.tasks.detect import DetectionTask

    assert FILE in DetectionTask.teacher_onnx_files
