"""``--method``: which distillation to run, parsed from a short text (no torch here: the CLI checks it at once).

The text is ``+``-joined parts, each a loss term with an optional weight (``kd``, ``at:0.5``) or one
teacher strategy:

- terms: ``kd`` (Hinton), ``dkd`` (decoupled KD), ``fitnet`` (hint layer + learned 1x1 adapter),
  ``at`` (attention transfer), ``rkd`` (relational: distance and angle);
- strategies: ``ensemble`` (several teachers, logits averaged or weighted), ``progressive`` (teacher ->
  assistants -> student), ``self`` (born-again: the student learns from its own earlier generation).

A strategy without terms uses ``kd``; ``ensemble+dkd`` or ``kd+at`` combine. Terms add up as
``alpha * sum(weight * term) + (1 - alpha) * CE`` (losses.py).
"""

from __future__ import annotations

import difflib
import math
from dataclasses import dataclass

from edgekit import registry
from edgekit.errors import EdgekitError

TERMS = tuple(registry.METHOD_TERMS)
STRATEGIES = tuple(registry.METHOD_STRATEGIES)
FEATURE_TERMS = ("fitnet", "at")


@dataclass(frozen=True)
class Method:
    strategy: str | None
    terms: tuple[tuple[str, float], ...]

    @property
    def needs_features(self) -> bool:
        return any(reads_features(name) for name, _ in self.terms)


def reads_features(term: str) -> bool:
    """Whether a loss term reads the teacher's inner layers or embedding (not only its logits)."""
    return term in FEATURE_TERMS or term == "rkd"


def parse_method(text: str) -> Method:
    """``"ensemble+dkd"`` -> Method("ensemble", (("dkd", 1.0),)); every mistake names itself and the fix."""
    strategy: str | None = None
    terms: list[tuple[str, float]] = []
    for raw in text.split("+"):
        name, _, weight_text = raw.strip().partition(":")
        name = name.strip().lower()
        if name in STRATEGIES:
            if strategy is not None:
                raise EdgekitError(f"--method '{text}' names two strategies ({strategy}, {name})",
                                   "pick one of ensemble, progressive, self")
            if weight_text:
                raise EdgekitError(f"--method '{text}': the strategy {name} takes no weight", f"write {name} alone")
            strategy = name
            continue
        if name not in TERMS:
            if name in ("qat", "ptq"):
                raise EdgekitError(f"--method '{name}' is a quantization method", f"pass --quant-method {name}")
            close = difflib.get_close_matches(name, TERMS + STRATEGIES, n=1)
            hint = f"did you mean '{close[0]}'?" if close else f"choose from {', '.join(TERMS + STRATEGIES)}"
            raise EdgekitError(f"unknown distillation method '{name}' in --method '{text}'", hint)
        weight = _weight(weight_text, name, text)
        if name in (n for n, _ in terms):
            raise EdgekitError(f"--method '{text}' names {name} twice", "give each term once, with one weight")
        terms.append((name, weight))
    return Method(strategy, tuple(terms) or (("kd", 1.0),))


def _weight(text: str, name: str, method: str) -> float:
    if not text:
        return 1.0
    try:
        weight = float(text)
    except ValueError:
        weight = math.nan
    if not (math.isfinite(weight) and weight > 0):
        raise EdgekitError(f"--method '{method}': the weight of {name} must be a positive number, got '{text}'",
                           f"write e.g. {name}:0.5")
    return weight
