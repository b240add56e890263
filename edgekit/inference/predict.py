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


def _open(make: Callable[[], Any], path: Path) -> Any:
    try:
        return make()
    except Exception as exc:  # noqa: BLE001 - onnxruntime and LiteRT raise many kinds for a file they cannot load
        raise EdgekitError(f"model {path} cannot be loaded ({exc.__class__.__name__})",
                           "pass a .tflite/.onnx/.pte file exported by edgekit, unmodified") from None


def predict(model: Path, images: list[Path], score: float | None = None, iou: float | None = None,
            top: int = 5) -> tuple[Path, Recipe, list[dict[str, Any]]]:
    """The model actually run, its recipe, and one result per image."""
    path = resolve_model(model)
    decoded = [(p, read_image(p)) for p in images]  # every image checked before any work
    recipe = load_recipe(path)
    from edgekit.runtime.runners import open_runner
    from edgekit.tasks import get_task

    task = get_task(recipe.task)
    runner = _open(lambda: open_runner(path, recipe.entry, 1), path)
    options = {"score": score, "iou": iou, "top": top, "detection": recipe.detection, "resize": recipe.spec.resize_mode}
    results = []
    for p, im in decoded:
        outputs = runner.outputs(_input(recipe, im))
        scored = task.class_count(outputs)
        if scored != len(recipe.classes):
            raise EdgekitError(f"{len(recipe.classes)} class names were found for {path.name} (labels.txt beside it, "
                               f"or its own metadata) and the model scores {scored} classes",
                               f"put back the labels.txt `edgekit export` wrote: one class name a line, {scored} lines")
        results.append({"image": str(p), **task.app_result(outputs, recipe.classes, (im.width, im.height),
                                                           recipe.spec.size, options)})
    return path, recipe, results
