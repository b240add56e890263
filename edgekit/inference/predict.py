"""Run one artifact on image files with the pre- and post-processing its recipe names.

Detection: ``{"image": path, "detections": [{"class", "score", "box": [x0, y0, x1, y1]}]}`` with boxes in
the original image's pixels (the model sees the image stretched to its square input, so x and y scale
back separately). Classification: ``{"image": path, "top": [{"class", "score"}]}``, softmax scores.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image, UnidentifiedImageError

from edgekit.data.image_limits import ImageTooLarge, open_image
from edgekit.errors import EdgekitError
from edgekit.inference.recipe import Recipe, load_recipe, resolve_model


def read_image(path: Path) -> Image.Image:
    if not Path(path).is_file():
        raise EdgekitError(f"image {path} does not exist", "pass image files (JPEG, PNG, ...)")
    try:
        with open_image(path) as im:
            im.load()
            return im.copy()
    except ImageTooLarge as exc:
        raise EdgekitError(f"image {exc}", "resize it below the limit before predicting") from None
    except (UnidentifiedImageError, OSError, ValueError) as exc:
        raise EdgekitError(f"image {path} cannot be decoded ({exc.__class__.__name__})",
                           "pass a readable JPEG/PNG/BMP/WebP file") from None


def _input(recipe: Recipe, image: Image.Image) -> np.ndarray:
    return recipe.spec.normalize(recipe.spec.resize(image)[None]).numpy()


def _softmax(z: np.ndarray) -> np.ndarray:
    e = np.exp(z - z.max())
    return e / e.sum()


def _open(make: Callable[[], Any], path: Path) -> Any:
    try:
        return make()
    except Exception as exc:  # noqa: BLE001 - onnxruntime and LiteRT raise many kinds for a file they cannot load
        raise EdgekitError(f"model {path} cannot be loaded ({exc.__class__.__name__})",
                           "pass a .tflite/.onnx file exported by edgekit, unmodified") from None


def predict(model: Path, images: list[Path], score: float | None = None, iou: float | None = None,
            top: int = 5) -> tuple[Path, Recipe, list[dict[str, Any]]]:
    """The model actually run, its recipe, and one result per image."""
    path = resolve_model(model)
    decoded = [(p, read_image(p)) for p in images]  # every image checked before any work
    recipe = load_recipe(path)
    results = []
    from edgekit.bench.runtimes import open_runner

    runner = _open(lambda: open_runner(path, recipe.entry, 1), path)
    if recipe.detection is not None:
        from edgekit.detect.postprocess import decode

        det = recipe.detection
        height, width = recipe.spec.size
        for p, im in decoded:
            outputs = runner.outputs(_input(recipe, im))
            scores, boxes = outputs["scores"], outputs["boxes"]
            found = decode(scores[0].T, boxes[0].T, width, list(det["strides"]),
                           det["score_threshold"] if score is None else score, det["iou_threshold"] if iou is None else iou)
            sx, sy = im.width / width, im.height / height
            results.append({"image": str(p), "detections": [
                {"class": recipe.classes[d["label"]], "score": round(d["score"], 4),
                 "box": [round(d["box"][0] * sx, 1), round(d["box"][1] * sy, 1), round(d["box"][2] * sx, 1),
                         round(d["box"][3] * sy, 1)]} for d in found]})
        return path, recipe, results
    for p, im in decoded:
        probs = _softmax(runner(_input(recipe, im))[0].astype(np.float64))
        order = np.argsort(-probs)[:top]
        results.append({"image": str(p), "top": [{"class": recipe.classes[i], "score": round(float(probs[i]), 4)}
                                                 for i in order]})
    return path, recipe, results
