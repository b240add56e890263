"""Which file to run and how to feed it: the model path (a file, or a run directory's pick) and its recipe
(preprocess.json beside it, else the copy embedded in the file), with class names and, for detection,
the decoding parameters."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from edgekit.data.preprocess import PreprocessSpec
from edgekit.errors import EdgekitError
from edgekit.export.artifact_meta import LABELS_FILE, PREPROCESS_FILE

MODEL_SUFFIXES = (".onnx", ".tflite", ".pte")


@dataclass
class Recipe:
    spec: PreprocessSpec
    classes: list[str]
    entry: dict[str, Any]            # the file's I/O: input name, layout, dtypes, quantization, outputs
    detection: dict[str, Any] | None  # strides, thresholds, ... (None: a classifier)

    @property
    def task(self) -> str:
        """The task whose decoding the outputs need (tasks/__init__.py names them)."""
        return self.detection.get("task", "detect") if self.detection is not None else "classify"


def resolve_model(path: Path) -> Path:
    """A model file as given, or for a run directory the report's deploy pick (else the INT8 TFLite file)."""
    path = Path(path)
    if not path.exists():
        raise EdgekitError(f"model {path} does not exist", "pass a .tflite/.onnx/.pte file or a run directory")
    if path.is_file():
        if path.suffix not in MODEL_SUFFIXES:
            raise EdgekitError(f"model {path} is not a .tflite, .onnx or .pte file", "pass an artifact edgekit exported")
        return path
    artifacts = path / "artifacts"
    if not artifacts.is_dir():
        raise EdgekitError(f"{path} is a folder but not a run directory (no artifacts/)",
                           "pass a run directory made by `edgekit compress`, or a model file")
    pick = None
    try:
        pick = json.loads((path / "report.json").read_text(encoding="utf-8")).get("deploy", {}).get("name")
    except (OSError, ValueError):
        pass
    for name in (pick, "model_int8.tflite", "model_fp32.tflite", "model_int8.onnx", "model_fp32.onnx"):
        if name and (artifacts / name).is_file():
            return artifacts / name
    raise EdgekitError(f"{artifacts} holds no model file", "rerun `edgekit compress` (or `edgekit export`) for this run")


def _embedded(path: Path) -> dict[str, Any] | None:
    try:
        if path.suffix == ".tflite":
            from edgekit.export.tflite_format import METADATA_NAME, read_metadata

            raw = read_metadata(path, METADATA_NAME)
            return json.loads(raw) if raw else None
        if path.suffix == ".pte":
            from edgekit.export.pte_format import read_recipe

            return read_recipe(path)
        import onnx

        props = {p.key: p.value for p in onnx.load(str(path), load_external_data=False).metadata_props}
        return json.loads(props["edgekit.preprocess"]) if "edgekit.preprocess" in props else None
    except Exception:  # noqa: BLE001 - a file that cannot be parsed is reported by the runtime, with its name
        return None


def load_recipe(model: Path) -> Recipe:
    sidecar = model.parent / PREPROCESS_FILE
    if sidecar.is_file():
        try:
            doc = json.loads(sidecar.read_text(encoding="utf-8"))
            entry = doc["artifacts"][model.name]
        except (ValueError, KeyError, TypeError):
            doc = entry = None
        if doc is not None and entry is not None:
            labels = model.parent / doc.get("labels", LABELS_FILE)
            classes = labels.read_text(encoding="utf-8").splitlines() if labels.is_file() else doc.get("classes")
            return _recipe(doc, entry, classes, model)
    doc = _embedded(model)
    if doc is None:
        raise EdgekitError(f"no preprocessing recipe for {model}: no {PREPROCESS_FILE} beside it naming it, none inside it",
                           f"keep the {PREPROCESS_FILE} and {LABELS_FILE} that `edgekit export` wrote next to the model")
    return _recipe(doc, doc, doc.get("classes"), model)


def _recipe(doc: dict[str, Any], entry: dict[str, Any], classes: list[str] | None, model: Path) -> Recipe:
    if not classes:
        raise EdgekitError(f"no class names for {model}", f"keep {LABELS_FILE} beside the model")
    spec = PreprocessSpec(size=tuple(doc["size"]), mean=tuple(doc["mean"]), std=tuple(doc["std"]),
                          scale=doc.get("scale", 1 / 255), color=doc.get("color", "RGB"),
                          resize_mode=doc.get("resize", "stretch"))
    return Recipe(spec, list(classes), entry, doc.get("detection"))
