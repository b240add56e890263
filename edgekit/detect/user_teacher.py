"""A detection teacher a user hands us (safetensors or a weights-only .pt/.pth state dict):

- a TinyDetector: its shape comes from a ``model.json`` beside the file (what edgekit's own teacher stage
  writes) or, without one, is the built-in teacher's (width 1.0, neck 96, head depth 3);
- torchvision's FCOS (``--teacher-arch fcos_resnet50_fpn``), the torchvision detector whose heads match
  TinyDetector's (detect/torchvision_teacher.py); other torchvision detectors are refused with the reason.
The weights are matched strictly, so a checkpoint of another architecture or class count fails with the
mismatch named. An ``.onnx`` teacher is a YOLO export (detect/yolo_teacher.py), not loaded here.
"""

from __future__ import annotations

import json
from pathlib import Path

from edgekit.detect.tiny_detector import DetectorSpec, TinyDetector
from edgekit.detect.teacher_archs import FCOS_ARCHS
from edgekit.detect.torchvision_teacher import FCOSSpec, FCOSTeacher
from edgekit.errors import EdgekitError
from edgekit.models.user_weights import fit_state_dict, read_state_dict

TEACHER = {"width": 1.0, "neck": 96, "head_depth": 3}
def teacher_spec(path: Path, num_classes: int) -> DetectorSpec:
    sidecar = Path(path).parent / "model.json"
    spec = dict(TEACHER)
    if sidecar.is_file():
        try:
            recorded = json.loads(sidecar.read_text(encoding="utf-8"))
        except ValueError:
            raise EdgekitError(f"{sidecar} is not valid JSON", "fix it, or remove it to assume the built-in teacher") from None
        if recorded.get("kind") == "tiny_detector":
            spec = {k: recorded[k] for k in ("width", "neck", "head_depth") if k in recorded}
    return DetectorSpec(num_classes, **spec)


def load_user_detector(path: Path, num_classes: int, arch: str = "") -> TinyDetector | FCOSTeacher:
    if arch in FCOS_ARCHS:
        fcos = FCOSTeacher(FCOSSpec(num_classes, arch))
        fit_state_dict(fcos.fcos, read_state_dict(path), path, f"{arch} ({num_classes} classes)")
        return fcos.eval()
    if Path(path).suffix == ".pt2":
        raise EdgekitError(f"teacher file {path} is an ExportedProgram; a detection teacher must be a TinyDetector "
                           "state dict", "pass its .safetensors (or a weights-only .pt) with model.json beside it")
    spec = teacher_spec(path, num_classes)
    model = TinyDetector(spec)
    name = f"tiny_detector x{spec.width} (neck {spec.neck}, head depth {spec.head_depth}, {num_classes} classes)"
    fit_state_dict(model, read_state_dict(path), path, name)
    return model.eval()
