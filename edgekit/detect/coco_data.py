"""``--data instances.json --images DIR``: COCO json annotations.

Categories are renumbered 0..C-1 in the order of their ids; ``bbox`` is [x, y, w, h] in pixels. Boxes
reaching outside their image are clipped (counted in a warning); crowd annotations are skipped. Images
listed without annotations are background. The split is fixed and seeded: 80 % train, 10 % val, 10 % test.
"""

from __future__ import annotations

import json
import math
import warnings
from pathlib import Path

import numpy as np
from PIL import UnidentifiedImageError

from edgekit.detect.data import DetectionData, DetectionSplit
from edgekit.data.bad_images import BadImages
from edgekit.data.image_limits import open_image
from edgekit.data.preprocess import letterbox_boxes, letterbox_image
from edgekit.errors import EdgekitError


def _bad(annotations: Path, why: str) -> EdgekitError:
    return EdgekitError(f"{annotations} is not a COCO instances file ({why})",
                        "it needs 'images' [{id, file_name}], 'annotations' [{image_id, category_id, bbox}] "
                        "and 'categories' [{id, name}]")


def _is_number(v: object) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def _read_coco(annotations: Path) -> tuple[list[dict], list[dict], list[dict]]:
    """Categories sorted by id, image entries and annotations, each checked for the fields and types used."""
    try:
        doc = json.loads(annotations.read_text(encoding="utf-8"))
    except (ValueError, UnicodeDecodeError, RecursionError) as exc:  # JSONDecodeError is a ValueError
        raise _bad(annotations, type(exc).__name__) from None
    if not isinstance(doc, dict):
        raise _bad(annotations, "not a JSON object")
    parts = {key: doc.get(key, [] if key == "annotations" else None) for key in ("categories", "images", "annotations")}
    for key, items in parts.items():
        if not isinstance(items, list) or not all(isinstance(item, dict) for item in items):
            raise _bad(annotations, f"'{key}' is not a list of objects")
    cats, entries, anns = parts["categories"], parts["images"], parts["annotations"]
    if not all(isinstance(c.get("id"), int) and isinstance(c.get("name"), (str, int)) for c in cats):
        raise _bad(annotations, "a category without an integer id and a name")
    if not all(isinstance(e.get("id"), (int, str)) and isinstance(e.get("file_name"), str) and e["file_name"]
               and "\0" not in e["file_name"] for e in entries):
        raise _bad(annotations, "an image without an id and a file_name")
    for a in anns:
        bbox = a.get("bbox")
        if (not isinstance(a.get("image_id"), (int, str)) or not isinstance(a.get("category_id"), int)
                or not isinstance(bbox, list) or len(bbox) != 4 or not all(_is_number(v) for v in bbox)):
            raise _bad(annotations, f"annotation {str(a.get('id'))[:20]} lacks an image_id, a category_id "
                                    "or a bbox of four numbers")
    return sorted(cats, key=lambda c: c["id"]), entries, anns


def load_coco(annotations: Path, images: Path, size: int, seed: int = 0, skip_bad_images: bool = False) -> DetectionData:
    if not annotations.is_file():
        raise EdgekitError(f"annotation file {annotations} does not exist", "pass a COCO instances .json")
    if not images.is_dir():
        raise EdgekitError(f"image folder {images} does not exist", "pass --images DIR holding the json's file_names")
    cats, entries, anns = _read_coco(annotations)
    index = {c["id"]: i for i, c in enumerate(cats)}
    by_image: dict[int, list[dict]] = {}
    for a in anns:
        by_image.setdefault(a["image_id"], []).append(a)
    root = images.resolve()
    for entry in entries:  # every file name is checked before any image is read
        if not (root / entry["file_name"]).resolve().is_relative_to(root):
            raise EdgekitError(f"{annotations}: image {entry['id']!r} has file_name {entry['file_name'][:80]!r}, "
                               f"outside --images {images}", "give file names relative to the --images folder")
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
                with open_image(path) as im:
                    im = im.convert("RGB")
                    w, h = im.width, im.height
                    imgs.append(letterbox_image(im, (size, size)))
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
                    b.append(letterbox_boxes(inside, h, w, (size, size))[0])
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
