"""``--pretrained`` for detection: torchvision's MobileNetV2 ImageNet weights in a TinyDetector's backbone.

TinyDetector's backbone is torchvision's MobileNetV2 ``features`` cut in three (detect/tiny_detector.py:
``stage8`` = features[0:7], ``stage16`` = features[7:14], ``stage32`` = features[14:18]); the last 1x1 conv
(features[18]) and the classifier are not used. torchvision publishes those weights at width 1.0 only, which is the
width of the teacher the chain trains (detect/user_teacher.py TEACHER); a narrower TinyDetector starts from random
weights and the log says so. The file comes through the same weights API, cache and offline rules as
classification's ``--pretrained`` (models/pretrained.py), read weights-only.
"""

from __future__ import annotations

import torch

from edgekit.detect.tiny_detector import TinyDetector
from edgekit.errors import EdgekitError
from edgekit.models.pretrained import PUBLISHED_WIDTH, fetch, published_weights
from edgekit.models.user_weights import read_state_dict

ARCH = "mobilenet_v2"
STAGES = (("stage8", 0, 7), ("stage16", 7, 14), ("stage32", 14, 18))  # TinyDetector module, features[start:end]


def backbone_state(published: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """MobileNetV2's ``features.i.*`` tensors under TinyDetector's names (``stage8.i.*``, ``stage16.i.*``, ...:
    the slices keep torchvision's indices); features[18] and the classifier dropped."""
    mapped = {}
    for key, value in published.items():
        parts = key.split(".")
        if parts[0] != "features" or not parts[1].isdigit():
            continue
        index = int(parts[1])
        for stage, start, end in STAGES:
            if start <= index < end:  # a slice of a Sequential keeps its modules' indices
                mapped[".".join([stage, *parts[1:]])] = value
    return mapped


def init_backbone(model: TinyDetector, name: str) -> str:
    """Load the published MobileNetV2 weights ``name`` into ``model``'s backbone; the line to log."""
    if model.spec.width != PUBLISHED_WIDTH:
        return (f"tiny_detector x{model.spec.width:g}: torchvision publishes {ARCH} weights at width "
                f"{PUBLISHED_WIDTH:g} only, random initialisation")
    weights = published_weights(ARCH, name)
    path = fetch(weights)
    state = backbone_state(read_state_dict(path, "weights file"))
    own = model.state_dict()
    wanted = [k for k in own if k.startswith(tuple(stage + "." for stage, _, _ in STAGES))]
    for key in wanted:
        if key not in state or tuple(state[key].shape) != tuple(own[key].shape):
            seen = "missing" if key not in state else f"{tuple(state[key].shape)}"
            raise EdgekitError(f"weights file {path} does not fit TinyDetector's MobileNetV2 backbone: '{key}' is "
                               f"{seen} there, {tuple(own[key].shape)} in the model",
                               f"put torchvision's {ARCH} {weights.name} file at {path}")
    model.load_state_dict({k: state[k] for k in wanted}, strict=False)
    return f"backbone from torchvision {ARCH} {weights.name} ({path.name}); neck and heads random"
