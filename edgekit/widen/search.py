"""Which layers to keep float: rank by sensitivity, add them one at a time until the goal is met, then leave out
again those the goal no longer needs.

Pure decisions over two measurements the caller supplies, both taken on an exported file in its own runtime:
``rank(kept)`` scores a candidate set on the validation split (for the ranking), ``check(kept)`` on the split
the budget is judged on. The ranking first orders the layers by the error each adds itself (its own SQNR in
the file, layers/report.py), then measures, for the ``trials`` least faithful of them, the file with only that
layer float: the accuracy a layer gives back is what decides, since a low SQNR in a layer the classifier
barely reads may cost nothing.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from edgekit.bench.kept_float_section import TOLERANCE


@dataclass
class Step:
    kept: list[str]
    score: float


@dataclass
class Outcome:
    goal: float
    start: float  # the fully integer file's score on the budget's split
    kept: list[str]  # the layers kept float, in the order they were added
    score: float  # the file's score with them
    met: bool
    limit: int  # the most layers it may keep float
    trials: dict[str, float] = field(default_factory=dict)  # layer -> validation score with only it float
    baseline_trial: float | None = None  # the fully integer file's validation score
    steps: list[Step] = field(default_factory=list)


def keep_until(layers_by_error: list[str], goal: float, check: Callable[[list[str]], float],
               rank: Callable[[list[str]], float], *, limit: int, trials: int) -> Outcome:
    """Keep layers float one at a time, most sensitive first, until ``check`` reaches ``goal`` or ``limit``."""
    start = check([])
    outcome = Outcome(goal=goal, start=start, kept=[], score=start, met=start >= goal - TOLERANCE, limit=limit)
    if outcome.met or limit < 1:
        return outcome
    tried = layers_by_error[:trials]
    outcome.baseline_trial = rank([])
    outcome.trials = {layer: rank([layer]) for layer in tried}
    # most accuracy given back first; the SQNR order breaks ties and orders the layers not tried
    order = sorted(tried, key=lambda layer: (-outcome.trials[layer], tried.index(layer)))
    order += [layer for layer in layers_by_error if layer not in outcome.trials]
    for layer in order[:limit]:
        outcome.kept.append(layer)
        outcome.score = check(list(outcome.kept))
        outcome.steps.append(Step(list(outcome.kept), outcome.score))
        if outcome.score >= goal - TOLERANCE:
            outcome.met = True
            break
    if outcome.met:
        _drop_unneeded(outcome, check)
    return outcome


def _drop_unneeded(outcome: Outcome, check: Callable[[list[str]], float]) -> None:
    """Layers kept early may not be needed once later ones are float (one-image calibration: a layer that gave
    back most alone overlapped with those after it): try the set without each, last added first but the very
    last (without it the goal was missed), and leave out every layer whose absence still meets the goal."""
    for layer in reversed(outcome.kept[:-1]):
        fewer = [k for k in outcome.kept if k != layer]
        score = check(fewer)
        outcome.steps.append(Step(fewer, score))
        if score >= outcome.goal - TOLERANCE:
            outcome.kept, outcome.score = fewer, score
