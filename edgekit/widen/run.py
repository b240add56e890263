"""The export stage's fallback: when an accuracy goal is set and the INT8 .tflite misses it, find the layers to keep
float (search.py) on trial files (trial.py), and say what they cost."""

from __future__ import annotations

import time
from typing import Any

import torch

from edgekit.models.predictions import load_outputs
from edgekit.pipeline.runner import stage_dir
from edgekit.widen.search import keep_until
from edgekit.widen.trial import TrialFiles, sample

LIMIT_SHARE = 0.25  # at most a quarter of the quantized layers kept float
TRIALS = 8  # layers measured alone for the ranking
SQNR_IMAGES = 32


def score_goal(fp32_score: float, max_drop: float | None, budget_floor: float | None) -> float | None:
    """The lowest score (0..1) every INT8 file must reach: ``max_drop`` points below the FP32 student's and the
    ``accuracy`` budget's floor, whichever is higher; None when neither is set."""
    goals = ([fp32_score - max_drop / 100.0] if max_drop is not None else []) + (
        [budget_floor] if budget_floor is not None else [])
    return max(goals) if goals else None


def keep_float_for_goal(ctx: Any, converted: torch.nn.Module, student: torch.nn.Module) -> dict[str, Any] | None:
    """None when no goal is set; else what was kept float, the scores on the way and whether the goal was met.
    The ranking is measured on the validation split, the goal on the split the budget is judged on."""
    s, task, data = ctx.settings, ctx.task, ctx.data
    fp32 = task.score(data, data.eval_split, load_outputs(stage_dir(ctx.out, "distill")))[task.metric.key]
    goal = score_goal(fp32, s.max_drop, s.accuracy_budget)
    if goal is None:
        return None
    started = time.perf_counter()
    ranking = "val" if "val" in data.splits and data.eval_split != "val" else "train"
    trials = TrialFiles(ctx, converted, student)
    try:
        ranked = trials.layers_by_error(sample(ctx.images(data.eval_split), SQNR_IMAGES, s.seed))
        limit = int(len(ranked) * LIMIT_SHARE)
        outcome = keep_until([path for path, _ in ranked], goal,
                             check=lambda kept: trials.score(data.eval_split, kept),
                             rank=lambda kept: trials.score(ranking, kept), limit=limit, trials=TRIALS)
    finally:
        trials.close()
    own = dict(ranked)
    result = {"goal": round(goal, 6), "fp32": round(fp32, 6), "split": data.eval_split, "ranking_split": ranking,
              "max_drop": s.max_drop, "accuracy_budget": s.accuracy_budget, "metric": task.metric.key,
              "int8_before": round(outcome.start, 6), "int8_after": round(outcome.score, 6), "met": outcome.met,
              "kept_float": outcome.kept, "layers": len(ranked), "limit": limit,
              "own_sqnr_db": {path: round(own[path], 2) for path in outcome.kept},
              "trials": {"val_without": outcome.baseline_trial, **{k: round(v, 6) for k, v in outcome.trials.items()}},
              "steps": [{"kept": st.kept, "score": round(st.score, 6)} for st in outcome.steps],
              "files_built": trials.built, "integer_file": trials.integer_file, "seconds": round(time.perf_counter() - started, 1)}
    return result


def widen_line(result: dict[str, Any]) -> str:
    kept, key = result["kept_float"], result["metric"]
    if not kept and result["met"]:
        return (f"export: INT8 .tflite {key} {100 * result['int8_before']:.2f} % on {result['split']} meets the goal "
                f"({100 * result['goal']:.2f} %) with every layer integer")
    head = (f"export: INT8 .tflite {key} {100 * result['int8_before']:.2f} % -> {100 * result['int8_after']:.2f} % "
            f"on {result['split']} (goal {100 * result['goal']:.2f} %) with {len(kept)} of {result['layers']} "
            f"layers kept float: {', '.join(kept)}")
    return head if result["met"] else head + f" — goal missed at the limit of {result['limit']} layers"
