"""The student choice (edgekit/choose/): candidates, their pre-training cost, the pick under budgets."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from edgekit.choose.candidates import (PHOTO_SIZES, Candidate, candidate_sizes, candidates_from_config,
                                       classifier_builder, default_candidates)
from edgekit.choose.cost import candidate_costs
from edgekit.choose.pick import closest, pick_student
from edgekit.errors import EdgekitError
from edgekit.estimate.op_costs import summarize
from edgekit.estimate.target_estimate import calibrate, estimate
from edgekit.estimate.target_profiles import load_target
from edgekit.estimate.torch_graph import torch_ops

SIZE_WITHIN = 0.10


def test_candidate_sizes_follow_the_data() -> None:
    assert candidate_sizes(32) == [32, 64, 96]
    assert candidate_sizes(480) == list(PHOTO_SIZES)
    default = default_candidates(480)
    assert len(default) == 8 * len(PHOTO_SIZES)
    assert {c.arch for c in default} == {"mobilenet_v2", "mobilenet_v3_small", "mobilenet_v3_large"}


def test_candidates_from_a_config_and_an_unknown_name() -> None:
    known = ["mobilenet_v2", "mobilenet_v3_small"]
    got = candidates_from_config([{"arch": "mobilenet_v2", "widths": [0.5, 1.0], "sizes": [96]}], 32, known)
    assert got == [Candidate("mobilenet_v2", 0.5, 96), Candidate("mobilenet_v2", 1.0, 96)]
    with pytest.raises(EdgekitError) as err:
        candidates_from_config([{"arch": "mobilenet_v9", "widths": [1.0]}], 32, known)
    assert "mobilenet_v9" in str(err.value) and "mobilenet_v2" in err.value.fix
    with pytest.raises(EdgekitError):
        candidates_from_config([{"arch": "mobilenet_v2", "widths": [0]}], 32, known)


def test_one_trace_serves_every_size_and_matches_a_direct_walk() -> None:
    """A family traced once at its smallest size and run again at the others costs what a walk at each size does."""
    cands = [Candidate("mobilenet_v3_small", 0.75, s) for s in (32, 64)]
    rows = candidate_costs(cands, classifier_builder(10), load_target("rpi4"), 4)
    cal = calibrate(load_target("rpi4"))
    model = classifier_builder(10)(cands[1])
    direct = estimate(summarize(torch_ops(model, torch.zeros(1, 3, 64, 64))), cal, 4)
    assert rows[1]["estimate_ms"] == direct["ms"] and rows[1]["macs"] == direct["macs"]
    assert rows[1]["macs"] > 2 * rows[0]["macs"]  # four times the pixels, less the size-independent head


def test_pre_training_size_and_latency_of_the_runs_student(e2e_run: Path) -> None:
    """The run's student as a candidate: its INT8 file size and estimate, before training, against its own file."""
    from edgekit.estimate.tflite_graph import tflite_ops

    run = e2e_run / "run"
    spec = json.loads((run / "distill" / "model.json").read_text(encoding="utf-8"))
    size = json.loads((run / "artifacts" / "preprocess.json").read_text(encoding="utf-8"))["size"][0]
    [row] = candidate_costs([Candidate(spec["arch"], spec["width"], size)], classifier_builder(spec["num_classes"]),
                            load_target("rpi4"), 4)
    path = run / "artifacts" / "model_int8.tflite"
    assert abs(row["int8_bytes"] / path.stat().st_size - 1) <= SIZE_WITHIN
    final = estimate(summarize(tflite_ops(path)), calibrate(load_target("rpi4")), 4)["ms"]
    assert abs(row["estimate_ms"] / final - 1) <= 0.10


def _row(label: str, ms: float, macs: int, size: int = 10**6, band: float = 20.0) -> dict:
    return {"candidate": label, "estimate_ms": ms, "band_pct": band, "macs": macs, "int8_bytes": size}


def test_pick_takes_the_most_macs_that_fit_with_the_band() -> None:
    rows = [_row("a", 1.0, 100), _row("b", 4.0, 400), _row("c", 9.0, 900)]
    assert pick_student(rows, 10.0, None)["candidate"] == "b"  # c: 9 ms x 1.2 = 10.8 > 10
    assert "10.80 ms with band > 10 ms" in rows[2]["why"] and rows[1]["why"].startswith("CHOSEN")
    assert pick_student([dict(r) for r in rows], 10.0, None, margin=0.0)["candidate"] == "c"
    assert pick_student([dict(r) for r in rows], None, 0.5) is None  # every file 1 MB > 0.5 MB
    rows = [dict(r) for r in rows]
    assert pick_student(rows, 0.5, None) is None
    assert closest(rows, 0.5, None)["candidate"] == "a"


def test_a_looser_budget_never_picks_fewer_macs() -> None:
    rows = [_row(str(i), ms, macs) for i, (ms, macs) in enumerate([(1, 10), (2, 50), (3, 40), (5, 90), (8, 60)])]
    picked = [pick_student([dict(r) for r in rows], budget, None) for budget in (2, 5, 10, 20)]
    macs = [p["macs"] for p in picked]
    assert macs == sorted(macs)
