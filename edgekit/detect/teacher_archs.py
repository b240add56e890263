"""Which torchvision detectors can teach a TinyDetector, checked without importing torch (so a wrong name fails fast)."""

from __future__ import annotations

from edgekit.errors import EdgekitError

FCOS_ARCHS = ("fcos_resnet50_fpn",)
# torchvision detectors whose heads do not map onto one location per cell at strides 8 and 16
UNMATCHED = ("retinanet_resnet50_fpn", "retinanet_resnet50_fpn_v2", "ssd300_vgg16", "ssdlite320_mobilenet_v3_large",
             "fasterrcnn_resnet50_fpn", "fasterrcnn_resnet50_fpn_v2", "fasterrcnn_mobilenet_v3_large_fpn",
             "fasterrcnn_mobilenet_v3_large_320_fpn", "maskrcnn_resnet50_fpn", "maskrcnn_resnet50_fpn_v2",
             "keypointrcnn_resnet50_fpn")


def check_detection_teacher_arch(arch: str, teacher_file: str | None) -> None:
    """Which torchvision detectors can teach: FCOS, from a weights file. Needs no torch."""
    if arch in UNMATCHED:
        raise EdgekitError(f"--teacher-arch {arch} cannot teach a TinyDetector: its anchors or proposal stage do not map "
                           "onto one location per cell", f"use {FCOS_ARCHS[0]} weights, or a TinyDetector teacher")
    if arch in FCOS_ARCHS and teacher_file is None:
        raise EdgekitError(f"--teacher-arch {arch} needs its weights", f"pass --teacher FILE (a {arch} state dict "
                           "trained on this data's classes); edgekit trains only TinyDetector teachers")
