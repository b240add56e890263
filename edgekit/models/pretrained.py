"""Published weights through torchvision's weights API, read safely from the torch hub cache, and a student
initialised from a user's weights file.

``--pretrained DEFAULT`` (or a weights name such as ``IMAGENET1K_V1``) starts the teacher the chain trains and the
student from torchvision's published weights; the classifier head is replaced for the data's classes and the
stage trains on. The file is the one ``torchvision`` itself would use: ``$TORCH_HOME/hub/checkpoints/<name>``. When
it is missing it is downloaded there (users' machines have a network); when that fails, or ``EDGEKIT_OFFLINE=1``
forbids trying, the run stops before training with the URL and the path to put the file at. It is read with
``torch.load(weights_only=True)``, which runs no code from the file.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import urllib.error
import urllib.request
import warnings
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlparse

import torch
from torchvision.models import get_model_weights, list_models

from edgekit.errors import EdgekitError
from edgekit.models.user_weights import read_state_dict

OFFLINE = "EDGEKIT_OFFLINE"  # set to 1: never download, use the cache or stop
PUBLISHED_WIDTH = 1.0  # torchvision publishes MobileNet weights at width 1.0 only


@dataclass(frozen=True)
class Published:
    arch: str
    name: str  # the enum member's name, e.g. IMAGENET1K_V2
    url: str
    classes: int

    @property
    def cache_path(self) -> Path:
        """Where torch.hub.load_state_dict_from_url keeps this file."""
        return Path(torch.hub.get_dir()) / "checkpoints" / os.path.basename(urlparse(self.url).path)


def published_weights(arch: str, name: str) -> Published:
    """The torchvision weights of ``arch`` called ``name`` (DEFAULT: the builder's recommended ones)."""
    if arch not in list_models():
        raise EdgekitError(f"--pretrained: torchvision publishes no weights for '{arch}'",
                           "leave --pretrained out for it, or pick a torchvision architecture")
    try:
        enum = get_model_weights(arch)
    except (ValueError, KeyError):
        raise EdgekitError(f"--pretrained: torchvision has no weights for '{arch}'", "leave --pretrained out") from None
    members = list(enum.__members__)
    try:
        weights = enum.DEFAULT if name.upper() == "DEFAULT" else enum[name]
    except KeyError:
        raise EdgekitError(f"--pretrained {name}: {arch} has no weights of that name",
                           f"use DEFAULT or one of {', '.join(members)}") from None
    return Published(arch, weights.name, weights.url, len(weights.meta["categories"]))


def fetch(weights: Published) -> Path:
    """The cached file, downloaded first when it is missing and downloads are allowed."""
    path = weights.cache_path
    if path.is_file():
        return path
    fix = f"download {weights.url} on a machine with a network and put it at {path}, then rerun"
    if os.environ.get(OFFLINE) == "1":
        raise EdgekitError(f"the {weights.arch} {weights.name} weights are not in the torch hub cache "
                           f"({OFFLINE}=1 forbids downloading)", fix)
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        with urllib.request.urlopen(weights.url, timeout=60) as response, \
                tempfile.NamedTemporaryFile(dir=path.parent, suffix=".partial", delete=False) as tmp:
            shutil.copyfileobj(response, tmp)
        os.replace(tmp.name, path)  # a half-downloaded file never takes the cache's name
    except (urllib.error.URLError, OSError, TimeoutError) as exc:
        if "tmp" in locals():
            Path(tmp.name).unlink(missing_ok=True)
        reason = getattr(exc, "reason", None) or exc.__class__.__name__
        raise EdgekitError(f"cannot download the {weights.arch} {weights.name} weights ({reason})", fix) from None
    return path


def _head_keys(model: torch.nn.Module) -> set[str]:
    """The state-dict keys of the last Linear layer: the classifier a new data set replaces."""
    last = [name for name, m in model.named_modules() if isinstance(m, torch.nn.Linear)][-1:]
    return {f"{last[0]}.{p}" for p in ("weight", "bias")} if last else set()


def load_matching(model: torch.nn.Module, state: dict[str, torch.Tensor], source: str, what: str) -> list[str]:
    """Copy ``state`` into ``model``; only the classifier head may differ in shape (it keeps its fresh
    initialisation). Any other missing, extra or wrong-shape tensor is named, the first one, and refused."""
    own = model.state_dict()
    head = _head_keys(model)
    for key in own:
        if key not in state and key not in head:
            raise EdgekitError(f"{source} does not match {what}: it has no tensor '{key}'",
                               f"give weights saved from {what}")
        if key in state and tuple(state[key].shape) != tuple(own[key].shape) and key not in head:
            raise EdgekitError(f"{source} does not match {what}: '{key}' is {tuple(state[key].shape)} in the file, "
                               f"{tuple(own[key].shape)} in the model", f"give weights saved from {what}")
    extra = [k for k in state if k not in own]
    if extra:
        raise EdgekitError(f"{source} does not match {what}: it has a tensor '{extra[0]}' the model lacks",
                           f"give weights saved from {what}")
    replaced = sorted(k for k in head if k in state and tuple(state[k].shape) != tuple(own[k].shape))
    model.load_state_dict({k: v for k, v in state.items() if k not in replaced}, strict=False)
    return replaced


def has_published(arch: str, width: float | None) -> bool:
    return width is None or width == PUBLISHED_WIDTH


def init_pretrained(model: torch.nn.Module, arch: str, name: str, width: float | None = None) -> str:
    """Load the published weights of ``arch`` into ``model`` (built for the data's classes); the line to log."""
    if not has_published(arch, width):
        warnings.warn(f"--pretrained: torchvision publishes {arch} weights at width {PUBLISHED_WIDTH:g} only; "
                      f"{arch} x{width:g} starts from random weights")
        return f"{arch} x{width:g}: no published weights, random initialisation"
    weights = published_weights(arch, name)
    path = fetch(weights)
    replaced = load_matching(model, read_state_dict(path, "weights file"), f"weights file {path}", arch)
    head = f"; classifier head replaced ({weights.classes} -> the data's classes)" if replaced else ""
    return f"{arch} from torchvision {weights.name} ({path.name}){head}"


def check_pretrained(arch: str, name: str, width: float | None = None) -> None:
    """Before training: the weights exist and their file is in the cache (downloaded now if allowed)."""
    if has_published(arch, width):
        fetch(published_weights(arch, name))


def init_from_file(model: torch.nn.Module, path: Path, what: str) -> str:
    """``--student-weights``: a safetensors or weights-only state dict for the student (head may differ)."""
    replaced = load_matching(model, read_state_dict(path, "student weights file"), f"student weights {path}", what)
    return f"{what} from {path.name}" + ("; classifier head replaced" if replaced else "")
