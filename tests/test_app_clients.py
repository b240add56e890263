"""The e2e run's files opened by the clients apps use, from the path alone: MediaPipe Tasks' ImageClassifier
for the .tflite files (it reads the standard TFLite metadata and the labels packed in the file), a plain
onnxruntime session for the FP32 .onnx. Their top-1 must agree with edgekit's own runners."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from conftest import E2E_FLAGS, digits_test_split, run_cli

LABELS = [str(d) for d in range(10)]


@pytest.fixture(scope="module")
def artifacts(e2e_run: Path) -> Path:
    return e2e_run / "run" / "artifacts"


@pytest.fixture(scope="module")
def preprocess(artifacts: Path) -> dict:
    return json.loads((artifacts / "preprocess.json").read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def resized(preprocess: dict) -> tuple[np.ndarray, np.ndarray]:
    """The held-out digits as an app holds them once resized to the file's input: uint8 RGB, and the labels."""
    gray, labels = digits_test_split()
    height, width = preprocess["size"]
    rgb = np.stack([np.asarray(Image.fromarray(g).convert("RGB").resize((width, height), Image.Resampling.BILINEAR))
                    for g in gray])
    return rgb, labels


def _own_top1(path: Path, entry: dict, doc: dict, rgb: np.ndarray) -> np.ndarray:
    from edgekit.data.preprocess import PreprocessSpec
    from edgekit.runtime.runners import open_runner

    spec = PreprocessSpec(size=tuple(doc["size"]), mean=tuple(doc["mean"]), std=tuple(doc["std"]))
    return open_runner(path, entry, threads=1)(spec.normalize(rgb).numpy()).argmax(1)


@pytest.mark.parametrize("name", ["model_fp32.tflite", "model_int8.tflite"])
def test_tflite_carries_standard_metadata_and_labels(artifacts: Path, name: str) -> None:
    from edgekit.export.tflite_metadata import associated_files, read_model_metadata, schema

    fb = schema()
    meta = read_model_metadata(artifacts / name)
    assert meta is not None, f"{name} has no TFLITE_METADATA"
    assert meta.name == b"edgekit image classifier" and meta.author == b"edgekit" and meta.minParserVersion == b"1.0.0"
    (graph,) = meta.subgraphMetadata
    (image,) = graph.inputTensorMetadata
    assert image.content.contentPropertiesType == fb.ContentProperties.ImageProperties
    assert image.content.contentProperties.colorSpace == fb.ColorSpaceType.RGB
    if name == "model_fp32.tflite":  # float input: the recipe x = pixel / 255 in pixel units
        (unit,) = image.processUnits
        assert unit.optionsType == fb.ProcessUnitOptions.NormalizationOptions
        assert list(unit.options.mean) == [0.0] * 3 and list(unit.options.std) == [255.0] * 3
    else:  # raw pixels: the normalization is inside the file
        assert not image.processUnits
        assert list(image.stats.min) == [0.0] and list(image.stats.max) == [255.0]
    (scores,) = graph.outputTensorMetadata
    (labels,) = scores.associatedFiles
    assert labels.name == b"labels.txt" and labels.type == fb.AssociatedFileType.TENSOR_AXIS_LABELS
    packed = associated_files(artifacts / name)
    assert packed == {"labels.txt": (artifacts / "labels.txt").read_bytes()}
    assert packed["labels.txt"].decode().split() == LABELS


@pytest.mark.parametrize("name", ["model_fp32.tflite", "model_int8.tflite"])
def test_mediapipe_image_classifier_agrees_with_litert(artifacts: Path, preprocess: dict,
                                                       resized: tuple[np.ndarray, np.ndarray], name: str) -> None:
    import mediapipe as mp
    from mediapipe.tasks.python import vision

    rgb, labels = resized
    with vision.ImageClassifier.create_from_model_path(str(artifacts / name)) as classifier:
        results = [classifier.classify(mp.Image(image_format=mp.ImageFormat.SRGB, data=np.ascontiguousarray(im)))
                   for im in rgb]
    top = [r.classifications[0].categories[0] for r in results]
    assert {c.category_name for c in top} <= set(LABELS)  # the names come from the file's own labels
    mediapipe_top1 = np.array([c.index for c in top])
    assert all(c.category_name == LABELS[c.index] for c in top)
    own = _own_top1(artifacts / name, preprocess["artifacts"][name], preprocess, rgb)
    agreement = float((mediapipe_top1 == own).mean())
    assert agreement >= 0.99, f"{name}: MediaPipe agrees with LiteRT on {agreement:.3f} of {len(rgb)} images"
    assert float((mediapipe_top1 == labels).mean()) > 0.8  # a working classifier, not a constant


def test_plain_onnxruntime_session_agrees_for_fp32(artifacts: Path, preprocess: dict,
                                                   resized: tuple[np.ndarray, np.ndarray]) -> None:
    import onnxruntime as ort

    from edgekit.data.preprocess import PreprocessSpec

    rgb, _ = resized
    name = "model_fp32.onnx"
    entry = preprocess["artifacts"][name]
    session = ort.InferenceSession(str(artifacts / name))  # what a server does: no options at all
    spec = PreprocessSpec(size=tuple(preprocess["size"]), mean=tuple(preprocess["mean"]), std=tuple(preprocess["std"]))
    x = spec.normalize(rgb).numpy()
    plain = session.run(None, {entry["input"]: x})[0].argmax(1)
    assert float((plain == _own_top1(artifacts / name, entry, preprocess, rgb)).mean()) >= 0.99


def test_io_int8_keeps_int8_input_and_output(e2e_run: Path, tmp_path: Path,
                                            resized: tuple[np.ndarray, np.ndarray]) -> None:
    """--io int8 (TFLite Micro): the same graph with int8 = pixel - 128 in and int8 out; same top-1."""
    run = tmp_path / "run"
    shutil.copytree(e2e_run / "run", run, symlinks=True)
    result = run_cli(["export", *E2E_FLAGS, "--config", str(e2e_run / "edgekit.toml"), "--io", "int8",
                      "--out", str(run)], cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    doc = json.loads((run / "artifacts" / "preprocess.json").read_text(encoding="utf-8"))
    entry = doc["artifacts"]["model_int8.tflite"]
    assert (entry["input_dtype"], entry["output_dtype"], entry["input_zero_point"]) == ("int8", "int8", -128)
    assert entry["input_feed"].startswith("int8 NHWC: pixel value - 128")
    rgb, _ = resized
    int8_top1 = _own_top1(run / "artifacts" / "model_int8.tflite", entry, doc, rgb)
    default = e2e_run / "run" / "artifacts"
    uint8_doc = json.loads((default / "preprocess.json").read_text(encoding="utf-8"))
    uint8_top1 = _own_top1(default / "model_int8.tflite", uint8_doc["artifacts"]["model_int8.tflite"], uint8_doc, rgb)
    assert np.array_equal(int8_top1, uint8_top1)


@pytest.mark.parametrize("flags, expected", [
    (["--io", "int4"], "io 'int4' is not known"),
    (["--config", "seven_bit.toml"], "weight-range '7bit' is not known"),
    (["--config", "per_channel.toml", "--io", "uint8"],
     "raw-pixel (uint8) INT8 input needs one mean and one std for all channels"),
])
def test_bad_io_settings_exit_2_in_one_line(tmp_path: Path, flags: list[str], expected: str) -> None:
    (tmp_path / "seven_bit.toml").write_text('weight_range = "7bit"\n', encoding="utf-8")
    (tmp_path / "per_channel.toml").write_text("mean = [0.485, 0.456, 0.406]\nstd = [0.229, 0.224, 0.225]\n",
                                               encoding="utf-8")
    result = run_cli(["compress", *flags, "--out", str(tmp_path / "run")], cwd=tmp_path)
    assert result.returncode == 2, result.stderr
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and expected in lines[0], result.stderr
    assert not (tmp_path / "run").exists()


def test_io_auto_keeps_raw_pixels_unless_the_recipe_is_per_channel() -> None:
    from edgekit.config import build_settings

    assert build_settings({}, {}).io == "uint8"
    imagenet = {"mean": [0.485, 0.456, 0.406], "std": [0.229, 0.224, 0.225]}
    assert build_settings(imagenet, {}).io == "int8"
    assert build_settings(imagenet, {"io": "int8"}).io == "int8"
    assert build_settings({"mean": [0.5] * 3, "std": [0.5] * 3}, {}).io == "uint8"


def test_a_metadata_failure_fails_the_file_and_leaves_nothing(artifacts: Path, tmp_path: Path,
                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    """The labels cannot be packed after the metadata buffers went in: the half-made file is not shipped."""
    from rich.console import Console

    from edgekit.data.preprocess import PreprocessSpec
    from edgekit.export import tflite_metadata
    from edgekit.export.guarded import guarded_export

    def no_zip(path: Path, files: dict) -> None:
        Path(str(path) + ".tmp").write_bytes(b"half")
        raise OSError("zip append failed")

    monkeypatch.setattr(tflite_metadata, "append_associated_files", no_zip)
    doc = json.loads((artifacts / "preprocess.json").read_text(encoding="utf-8"))
    entry = doc["artifacts"]["model_fp32.tflite"]
    spec = PreprocessSpec(size=tuple(doc["size"]), mean=tuple(doc["mean"]), std=tuple(doc["std"]))

    def build(path: Path) -> tuple[dict, str]:
        shutil.copy(artifacts / "model_fp32.tflite", path)
        tflite_metadata.write_tflite_metadata(path, recipe={}, kind="image classifier", classes=LABELS, entry=entry,
                                              spec=spec, outputs={"logits": "class scores"})
        return {}, "ok"

    row = guarded_export({"name": "model_fp32.tflite"}, tmp_path / "model_fp32.tflite", build, Console(quiet=True))
    assert row["status"] == "failed" and row["error"] == "OSError: zip append failed"
    assert list(tmp_path.iterdir()) == []
