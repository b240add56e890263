"""``--data instances.json --images DIR``: COCO json annotations.

Categories are renumbered 0..C-1 in the order of their ids; ``bbox`` is [x, y, w, h] in pixels. Boxes
reaching outside their image are clipped (counted in a warning); crowd annotations are skipped. Images
listed without annotations are background. The split is fixed and seeded: 80 % train, 10 % val, 10 % test.
"""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError

from edgekit.detect.data import DetectionData, DetectionSplit
from edgekit.data.bad_images import BadImages
from edgekit.errors import EdgekitError


def load_coco(annotations: Path, images: Path, size: int, seed: int = 0, skip_bad_images: bool = False) -> DetectionData:
    if not annotations.is_file():
        raise EdgekitError(f"annotation file {annotations} does not exist", "pass a COCO instances .json")
    if not images.is_dir():
        raise EdgekitError(f"image folder {images} does not exist", "pass --images DIR holding the json's file_names")
    try:
        doc = json.loads(annotations.read_text(encoding="utf-8"))
        cats = sorted(doc["categories"], key=lambda c: c["id"])
        entries = doc["images"]
        anns = doc.get("annotations", [])
    except (json.JSONDecodeError, UnicodeDecodeError, KeyError, TypeError) as exc:
        raise EdgekitError(f"{annotations} is not a COCO instances file ({type(exc).__name__})",
                           "it needs 'images', 'annotations' and 'categories'") from None
    index = {c["id"]: i for i, c in enumerate(cats)}
    by_image: dict[int, list[dict]] = {}
    for a in anns:
        by_image.setdefault(a["image_id"], []).append(a)
    order = np.random.default_rng(seed).permutation(len(entries))
    cut1, cut2 = int(0.8 * len(entries)), int(0.9 * len(entries))
    parts = {"train": order[:cut1], "val": order[cut1:cut2], "test": order[cut2:]}
    splits, clipped = {}, 0
    bad = BadImages(skip_bad_images)
    for name, idx in parts.items():
        imgs, boxes, labels, sizes = [], [], [], []
        for i in idx:
            entry = entries[int(i)]
            path = images / entry["file_name"]
            try:
                with Image.open(path) as im:
                    im = im.convert("RGB")
                    w, h = im.width, im.height
                    imgs.append(np.asarray(im.resize((size, size), Image.Resampling.BILINEAR), dtype=np.uint8))
            except (FileNotFoundError, UnidentifiedImageError, OSError) as exc:
                bad.handle(path, exc, "check --images and the json's file_name")
                continue
            b, lab = [], []
            for a in by_image.get(entry["id"], []):
                if a.get("iscrowd"):
                    continue
                if a["category_id"] not in index:
                    raise EdgekitError(f"{annotations}: annotation {a.get('id')} has unknown category {a['category_id']}",
                                       "add the category to 'categories' or fix the annotation")
                x, y, bw, bh = a["bbox"]
                box = np.array([x, y, x + bw, y + bh], dtype=np.float64)
                inside = np.clip(box, 0, [w, h, w, h])
                clipped += int(not np.allclose(inside, box))
                if inside[2] > inside[0] and inside[3] > inside[1]:
                    b.append(inside * [size / w, size / h, size / w, size / h])
                    lab.append(index[a["category_id"]])
            boxes.append(np.array(b, dtype=np.float32).reshape(-1, 4))
            labels.append(np.array(lab, dtype=np.int64))
            sizes.append((h, w))
        if imgs:
            splits[name] = DetectionSplit(np.stack(imgs), boxes, labels, sizes)
    if "train" not in splits:
        raise EdgekitError(f"{annotations} lists no images", "add images to the json")
    if clipped:
        warnings.warn(f"{clipped} box(es) reached outside their image and were clipped to it", stacklevel=2)
    bad.warn()
    return DetectionData([str(c["name"]) for c in cats], splits, str(annotations), size, skipped=bad.skipped)
