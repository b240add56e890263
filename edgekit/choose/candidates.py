"""Student candidates: an architecture, a width and an input size, built untrained for their cost.

The default set is MobileNetV2 at four widths and MobileNetV3-Small/-Large at two, each at the input sizes that
make sense for the data: for small images (32 px digits or CIFAR-10) their own size and two and three times it
(upsampled: a MobileNet's stride 32 leaves a 32 px image a single final cell), else the standard steps 96-224 px. A config file's ``[[candidates]]`` tables replace the set (``arch``,
``widths``, ``sizes``).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from edgekit import registry
from edgekit.errors import EdgekitError

if TYPE_CHECKING:
    import torch

SMALL_IMAGE = 64                            # data at or below this side is trained at its own size
PHOTO_SIZES = (96, 128, 160, 192, 224)      # the standard steps MobileNet weights are published for
DEFAULT_FAMILIES = registry.STUDENT_CANDIDATES


@dataclass(frozen=True)
class Candidate:
    arch: str
    width: float
    size: int

    @property
    def label(self) -> str:
        return f"{self.arch} x{self.width:g} @ {self.size} px"


@dataclass(frozen=True)
class ChoiceInputs:
    """What a task hands the choice: the candidates, how to build one untrained, and what they were made from."""

    candidates: list[Candidate]
    build: Callable[[Candidate], torch.nn.Module]
    classes: int
    native: int  # the data's short side in pixels (the sizes were derived from it)


def candidate_sizes(native: int) -> list[int]:
    """Input sizes worth trying for data whose images are ``native`` pixels on their short side."""
    return [native, 2 * native, 3 * native] if native <= SMALL_IMAGE else list(PHOTO_SIZES)


def default_candidates(native: int, families: Iterable[tuple[str, Iterable[float]]] = DEFAULT_FAMILIES
                       ) -> list[Candidate]:
    sizes = candidate_sizes(native)
    return [Candidate(arch, float(w), s) for arch, widths in families for w in widths for s in sizes]


def candidates_from_config(tables: list[dict[str, Any]], native: int, known: Iterable[str]) -> list[Candidate]:
    """``[[candidates]]`` tables: ``arch`` (a known student), ``widths`` (list) and optional ``sizes`` (list)."""
    known = sorted(known)
    out: list[Candidate] = []
    for i, table in enumerate(tables):
        unknown = sorted(set(table) - {"arch", "widths", "sizes"})
        if unknown:
            raise EdgekitError(f"candidate {i + 1} in the config has an unknown key '{unknown[0]}'",
                               "a [[candidates]] table takes arch, widths and sizes")
        arch = table.get("arch")
        if arch not in known:
            raise EdgekitError(f"candidate {i + 1} in the config names an unknown student '{arch}'",
                               f"use one of {', '.join(known)}")
        widths, sizes = table.get("widths", [1.0]), table.get("sizes") or candidate_sizes(native)
        if not all(isinstance(w, (int, float)) and w > 0 for w in widths) or \
                not all(isinstance(s, int) and s >= 16 for s in sizes):
            raise EdgekitError(f"candidate {i + 1} ({arch}) has a width that is not positive or a size under 16 px",
                               "give widths such as [0.5, 1.0] and sizes such as [96, 128]")
        out += [Candidate(arch, float(w), int(s)) for w in widths for s in sizes]
    return out


def classifier_builder(num_classes: int) -> Callable[[Candidate], torch.nn.Module]:
    """An untrained student for a candidate, built as the distill stage builds it (its cost needs shapes, not
    weights)."""
    from edgekit.models.builders import build_model, student_spec

    return lambda c: build_model(student_spec(c.arch, c.width, num_classes))
