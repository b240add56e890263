"""How many epochs the detection student distils for, chosen from the data when no epoch count is given.

A detector learns per optimizer step, not per pass over the data. The built-in scenes (1,200 training images at
batch 16: 75 steps an epoch) met every goal in the default 10 epochs, 750 steps
(benchmarks/results/detect_scenes.md). Aquarium's 448 training images give 28 steps an epoch, 280 in 10 epochs:
there the scratch student reached val mAP50 0.025 in 10 epochs and 0.054 in 20, and KD from the YOLO teacher
helped only at 20 (benchmarks/results/detect_kd_sweep_aquarium.md). So the student distils for the default epochs
or for as many as 750 steps take, whichever is more, at most twice the default: at 384 px an epoch of 448 images
takes about 25 s on 2 cores, and the default run's time goal (30 minutes) has room for 20 epochs beside the
TinyDetector teacher's 12, not for 27. The teacher's epochs stay as they are for the same reason.

Only the training split's image files are counted (a COCO json's entries, of which the loader trains on 80 %).
"""

from __future__ import annotations

import math
from pathlib import Path

MIN_STEPS = 750   # the built-in scenes' default: 10 epochs of 75 batches
MAX_FACTOR = 2    # at most twice the default epochs


def training_images(data: str, images: str | None) -> int | None:
    """How many images the training split holds, or None for what this cannot read (the loader names it)."""
    path = Path(data)
    if not path.is_file():
        return None
    if path.suffix in (".yaml", ".yml"):
        from edgekit.detect.yolo_data import image_files, read_yaml, training_folder

        doc = read_yaml(path)
        if not isinstance(doc, dict) or not isinstance(doc.get("train"), str):
            return None  # the loader names what is missing (a list of folders is not counted here)
        folder = training_folder(path, doc)
        return len(image_files(folder)) if folder.is_dir() else None
    if path.suffix == ".json":
        from edgekit.detect.coco_data import _read_coco

        return int(0.8 * len(_read_coco(path)[1]))  # coco_data.load_coco's split
    return None


def distill_epochs(train_images: int, batch_size: int, default: int) -> tuple[int, str]:
    """The rule of the module docstring, with the reason in words."""
    batches = max(1, math.ceil(train_images / batch_size))
    wanted = math.ceil(MIN_STEPS / batches)
    epochs = min(MAX_FACTOR * default, max(default, wanted))
    why = f"{epochs} epochs: {train_images} training images at batch {batch_size} are {batches} steps an epoch"
    if wanted <= default:
        return epochs, why + f"; the default {default} epochs already take {MIN_STEPS} steps or more"
    why += f"; {MIN_STEPS} steps (the built-in scenes' 10 epochs) take {wanted}"
    return epochs, why + (f", capped at {epochs} (twice the default) to keep the run's time" if epochs < wanted else "")
