"""Versions of every library that touched the numbers, and the host they ran on."""

from __future__ import annotations

import os
import platform
from importlib import metadata

LIBRARIES = ("edgekit", "torch", "torchvision", "torchao", "litert-torch", "ai-edge-litert", "onnx", "onnxscript",
             "onnxruntime", "executorch", "numpy", "scikit-learn", "pillow")


def library_versions() -> dict[str, str]:
    versions = {"python": platform.python_version()}
    for name in LIBRARIES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = "not installed"
    return versions


def host_info() -> dict[str, str | int]:
    cpu = platform.processor() or platform.machine()
    try:
        for line in open("/proc/cpuinfo", encoding="utf-8"):
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {"cpu": cpu, "cores": os.cpu_count() or 1, "machine": platform.machine(), "system": platform.system()}
