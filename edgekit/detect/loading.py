"""Pick the detection data from the settings: built-in scenes, a YOLO data.yaml, or COCO json + images."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from edgekit.detect.data import DetectionData, builtin_scenes
from edgekit.errors import EdgekitError
from edgekit.pipeline.fingerprint import path_digest

SCENES_VERSION = "1"


@lru_cache(maxsize=2)
def _load(data: str | None, images: str | None, size: int, seed: int, skip_bad_images: bool) -> tuple[DetectionData, str]:
    loaded, identity = _decode(data, images, size, seed, skip_bad_images)
    loaded.identity = identity
    return loaded, identity


def _decode(data: str | None, images: str | None, size: int, seed: int, skip_bad_images: bool
            ) -> tuple[DetectionData, str]:
    if data is None:
        scenes = builtin_scenes(size)
        return scenes, f"scenes/v{SCENES_VERSION}/size{size}/{scenes.counts()}"
    path = Path(data)
    if path.suffix in (".yaml", ".yml"):
        from edgekit.detect.yolo_data import load_yolo

        loaded = load_yolo(path, size, skip_bad_images)
        root = Path(loaded.source).parent
        return loaded, f"yolo/{path_digest(path)}/{path_digest(root)}/size{size}/letterbox"
    if path.suffix == ".json":
        if images is None:
            raise EdgekitError(f"--data {path} is COCO json, which needs the image folder", "add --images DIR")
        from edgekit.detect.coco_data import load_coco

        return (load_coco(path, Path(images), size, seed, skip_bad_images),
                f"coco/{path_digest(path)}/{path_digest(Path(images))}/size{size}/letterbox")
    raise EdgekitError(f"--data {path} is neither a data.yaml nor a COCO .json",
                       "pass an Ultralytics-style data.yaml, or instances.json with --images DIR")


def quick_check_detection_data(data: str | None, images: str | None) -> None:
    """What can be said without decoding anything: the data file exists and is a kind we read."""
    if data is None:
        if images is not None:
            raise EdgekitError("--images is given without --data", "pass --data instances.json with --images DIR")
        return
    path = Path(data)
    if not path.exists():
        raise EdgekitError(f"--data {path} does not exist", "pass a data.yaml or a COCO instances.json")
    if path.is_dir():
        raise EdgekitError(f"--data {path} is a folder; detection reads a data.yaml or a COCO .json",
                           "pass the data.yaml (Ultralytics layout) or instances.json with --images DIR")
    if path.suffix not in (".yaml", ".yml", ".json"):
        raise EdgekitError(f"--data {path} is neither a data.yaml nor a COCO .json",
                           "pass an Ultralytics-style data.yaml, or instances.json with --images DIR")
    if path.suffix == ".json":
        if images is None:
            raise EdgekitError(f"--data {path} is COCO json, which needs the image folder", "add --images DIR")
        if not Path(images).is_dir():
            raise EdgekitError(f"--images {images} is not a folder", "pass the folder holding the COCO images")


def load_detection(data: str | None, images: str | None, size: int, seed: int,
                   skip_bad_images: bool = False) -> tuple[DetectionData, str]:
    """The data and its content identity (for stage fingerprints); decoded once per process."""
    return _load(data, images, size, seed, skip_bad_images)
