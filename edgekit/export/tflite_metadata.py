"""Standard TFLite Model Metadata (``TFLITE_METADATA``), the metadata MediaPipe Tasks and LiteRT support read.

MediaPipe's ``ImageClassifier`` opens a ``.tflite`` from its path alone when the file says how to feed it
(image properties; ``NormalizationOptions`` for a float input) and where its labels are (an associated file
on the output tensor). The ready-made metadata writers do not install beside edgekit's stack (mediapipe
1.2.x ships ``metadata_writers`` without its native part; older releases pin numpy<2 or protobuf<4), so
the ``ModelMetadata`` table is built here with the schema's official generated bindings (shipped in the
``mediapipe`` wheel, loaded by path without starting MediaPipe) and packed the way the metadata populator
packs it: a ``TFLITE_METADATA`` buffer in the model, the associated files in a zip appended to the model.
"""

from __future__ import annotations

import importlib.util
import io
import json
import zipfile
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from types import ModuleType
from typing import Any

import flatbuffers

from edgekit.data.preprocess import PreprocessSpec
from edgekit.errors import EdgekitError

METADATA_BUFFER = "TFLITE_METADATA"
IDENTIFIER = b"M001"
SCHEMA_FILE = ("tasks", "metadata", "metadata_schema_py_generated.py")


@lru_cache(maxsize=1)
def schema() -> ModuleType:
    """The metadata schema's generated Python bindings from the installed ``mediapipe`` wheel."""
    found = importlib.util.find_spec("mediapipe")
    locations = list(found.submodule_search_locations or []) if found else []
    path = Path(locations[0]).joinpath(*SCHEMA_FILE) if locations else None
    if path is None or not path.is_file():
        raise EdgekitError("the TFLite metadata schema (mediapipe's metadata_schema_py_generated.py) is not installed",
                           "pip install mediapipe==1.2.2 (an edgekit dependency): reinstall edgekit")
    spec = importlib.util.spec_from_file_location("edgekit_tflite_metadata_schema", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@dataclass(frozen=True)
class ImageInput:
    """How the input tensor takes an image: raw 0..255 values (uint8), or floats normalised as
    ``(pixel - mean) / std`` with mean and std in pixel units (0..255), one per channel."""

    width: int
    height: int
    dtype: str  # "uint8", "int8" or "float32"
    mean: tuple[float, ...] | None = None  # float input only
    std: tuple[float, ...] | None = None


@dataclass(frozen=True)
class TensorInfo:
    name: str
    description: str
    labels: str | None = None  # an associated labels file (one class a line) for the tensor's last axis


def _input_metadata(fb: ModuleType, image: ImageInput) -> object:
    meta = fb.TensorMetadataT()
    meta.name = "image"
    meta.content = fb.ContentT()
    meta.content.contentPropertiesType = fb.ContentProperties.ImageProperties
    meta.content.contentProperties = fb.ImagePropertiesT()
    meta.content.contentProperties.colorSpace = fb.ColorSpaceType.RGB
    stats = fb.StatsT()
    if image.dtype == "float32":
        if image.mean is None or image.std is None:
            raise ValueError("a float input needs its normalization (mean and std in pixel units)")
        unit = fb.ProcessUnitT()
        unit.optionsType = fb.ProcessUnitOptions.NormalizationOptions
        unit.options = fb.NormalizationOptionsT()
        unit.options.mean, unit.options.std = list(image.mean), list(image.std)
        meta.processUnits = [unit]
        stats.min = [(0.0 - m) / s for m, s in zip(image.mean, image.std)]
        stats.max = [(255.0 - m) / s for m, s in zip(image.mean, image.std)]
        meta.description = (f"RGB image {image.width}x{image.height}, float32 (pixel - mean) / std per channel "
                            f"(NormalizationOptions)")
    else:
        stats.min, stats.max = ([0.0], [255.0]) if image.dtype == "uint8" else ([-128.0], [127.0])
        meta.description = (f"RGB image {image.width}x{image.height}, the 8-bit pixel values as they are"
                            if image.dtype == "uint8" else
                            f"RGB image {image.width}x{image.height}, int8 = uint8 pixel - 128 (TFLite Micro)")
    meta.stats = stats
    return meta


def _output_metadata(fb: ModuleType, info: TensorInfo) -> object:
    meta = fb.TensorMetadataT()
    meta.name, meta.description = info.name, info.description
    meta.content = fb.ContentT()
    meta.content.contentPropertiesType = fb.ContentProperties.FeatureProperties
    meta.content.contentProperties = fb.FeaturePropertiesT()
    meta.stats = fb.StatsT()
    if info.labels is not None:
        labels = fb.AssociatedFileT()
        labels.name = Path(info.labels).name
        labels.description = "class names, one a line, in the order of the tensor's last axis"
        labels.type = fb.AssociatedFileType.TENSOR_AXIS_LABELS
        meta.associatedFiles = [labels]
    return meta


def metadata_buffer(*, name: str, description: str, version: str, image: ImageInput,
                    outputs: list[TensorInfo]) -> bytes:
    """The packed ``ModelMetadata`` flatbuffer for a one-image-in model."""
    fb = schema()
    subgraph = fb.SubGraphMetadataT()
    subgraph.inputTensorMetadata = [_input_metadata(fb, image)]
    subgraph.outputTensorMetadata = [_output_metadata(fb, o) for o in outputs]
    model = fb.ModelMetadataT()
    model.name, model.description, model.version, model.author = name, description, version, "edgekit"
    model.license = "the model's own; edgekit is Apache-2.0"
    model.subgraphMetadata = [subgraph]
    # Every member used above is in the schema's first version; the parser version MediaPipe checks against
    # rises only with members this module does not write (metadata_version.cc in MediaPipe lists them).
    model.minParserVersion = "1.0.0"
    builder = flatbuffers.Builder(1024)
    builder.Finish(model.Pack(builder), file_identifier=IDENTIFIER)
    return bytes(builder.Output())


def append_associated_files(path: Path, files: dict[str, bytes]) -> None:
    """Append the associated files to the model as a zip, as the metadata populator does (MediaPipe and the
    TFLite Support library read them from there; the interpreter ignores bytes after the flatbuffer)."""
    model = Path(path).read_bytes()
    buffer = io.BytesIO(model)
    buffer.seek(len(model))
    with zipfile.ZipFile(buffer, "a", compression=zipfile.ZIP_STORED) as archive:
        for name, content in files.items():  # a fixed date: the same model gives the same bytes on every run
            archive.writestr(zipfile.ZipInfo(name, date_time=(1980, 1, 1, 0, 0, 0)), content)
    tmp = Path(path).with_suffix(".tflite.tmp")
    tmp.write_bytes(buffer.getvalue())
    tmp.replace(path)


def read_model_metadata(path: Path) -> object | None:
    """The file's ``ModelMetadataT``, or None when it has none."""
    from edgekit.export.tflite_format import read_metadata

    raw = read_metadata(path, METADATA_BUFFER)
    if raw is None:
        return None
    fb = schema()
    if not fb.ModelMetadata.ModelMetadataBufferHasIdentifier(raw, 0):
        return None
    return fb.ModelMetadataT.InitFromPackedBuf(bytearray(raw), 0)


def associated_files(path: Path) -> dict[str, bytes]:
    """The files packed into the model's zip (empty when there is none)."""
    data = Path(path).read_bytes()
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            return {name: archive.read(name) for name in archive.namelist()}
    except zipfile.BadZipFile:
        return {}


def image_input(entry: dict[str, Any], spec: PreprocessSpec) -> ImageInput:
    """The input as the file's I/O entry (preprocess.json) has it; float input normalised in pixel units."""
    _, height, width, _ = entry["input_shape"]
    dtype = entry["input_dtype"]
    if dtype != "float32":
        return ImageInput(width, height, dtype)
    return ImageInput(width, height, dtype, mean=tuple(255.0 * m for m in spec.mean),
                      std=tuple(255.0 * s for s in spec.std))


def write_tflite_metadata(path: Path, *, recipe: dict[str, Any], kind: str, classes: list[str],
                          entry: dict[str, Any], spec: PreprocessSpec, outputs: dict[str, str]) -> None:
    """Everything a ``.tflite`` carries: edgekit's recipe (``edgekit.preprocess``), the standard metadata, and
    the labels as its associated file. ``outputs``: each output's name and description, in the file's order;
    the first gets the labels."""
    from edgekit import __version__
    from edgekit.export.artifact_meta import LABELS_FILE, labels_text
    from edgekit.export.tflite_format import METADATA_NAME, embed_metadata

    names = list(outputs)
    standard = metadata_buffer(
        name=f"edgekit {kind}", version=__version__,
        description=f"{kind} for {len(classes)} classes ({Path(path).name}), made by edgekit {__version__}",
        image=image_input(entry, spec),
        outputs=[TensorInfo(n, outputs[n], LABELS_FILE if i == 0 else None) for i, n in enumerate(names)])
    embed_metadata(path, METADATA_NAME, json.dumps(recipe).encode())
    embed_metadata(path, METADATA_BUFFER, standard)
    append_associated_files(path, {LABELS_FILE: labels_text(classes).encode()})
