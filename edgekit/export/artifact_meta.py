"""preprocess.json and labels.txt: how an app feeds each artifact and names its outputs."""

from __future__ import annotations

from typing import Any

from edgekit.data.preprocess import PreprocessSpec

SCHEMA = "edgekit.preprocess/1"
LABELS_FILE = "labels.txt"
PREPROCESS_FILE = "preprocess.json"


def preprocess_document(spec: PreprocessSpec, artifacts: dict[str, dict[str, Any]],
                        task_extra: dict[str, Any]) -> dict[str, Any]:
    """preprocess.json: the recipe, what the task adds (a classifier's ``output``, a detector's decoding), and
    each file's I/O entry."""
    return {"schema": SCHEMA, **spec.to_dict(), "labels": LABELS_FILE, **task_extra, "artifacts": artifacts}


def embedded_document(spec: PreprocessSpec, classes: list[str], name: str, entry: dict[str, Any],
                      task_extra: dict[str, Any]) -> dict[str, Any]:
    """What travels inside one file: the recipe, what the task adds, its own I/O entry and the class names."""
    return {"schema": SCHEMA, **spec.to_dict(), **task_extra, "classes": classes, "artifact": name, **entry}


def labels_text(classes: list[str]) -> str:
    return "".join(f"{name}\n" for name in classes)


def input_feed(entry: dict[str, Any]) -> str:
    """What an app hands the file, in words (preprocess.json's ``input_feed``)."""
    dtype, layout = entry["input_dtype"], entry.get("layout", "NCHW")
    if dtype == "uint8":
        return f"uint8 {layout}: the resized image's RGB pixel values as they are (0..255), no normalization"
    if dtype == "int8":
        return f"int8 {layout}: pixel value - 128 (the input's scale and zero point apply the recipe)"
    return f"float32 {layout}: (pixel * scale - mean) / std per channel"
