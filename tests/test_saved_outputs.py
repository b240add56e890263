"""Stage folders from before one chain ran every task still give their reference outputs, in today's layout."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from safetensors.numpy import save_file

from edgekit.models.predictions import load_outputs, save_outputs


def test_outputs_round_trip(tmp_path: Path) -> None:
    scores, boxes = np.random.rand(2, 3, 180).astype(np.float32), np.random.rand(2, 4, 180).astype(np.float32)
    save_outputs(tmp_path, {"scores": scores, "boxes": boxes})
    got = load_outputs(tmp_path)
    assert np.array_equal(got["scores"], scores) and np.array_equal(got["boxes"], boxes)


def test_an_earlier_detection_folder_is_read_channel_major(tmp_path: Path) -> None:
    scores = np.random.rand(2, 180, 3).astype(np.float32)  # location-major, as detection stages saved them
    save_file({"scores": scores, "boxes": np.zeros((2, 180, 4), np.float32)}, str(tmp_path / "eval_outputs.safetensors"))
    assert np.array_equal(load_outputs(tmp_path)["scores"], scores.transpose(0, 2, 1))


def test_an_earlier_classification_folder_is_read(tmp_path: Path) -> None:
    logits = np.random.rand(5, 10).astype(np.float32)
    save_file({"logits": logits}, str(tmp_path / "eval_logits.safetensors"))
    assert np.array_equal(load_outputs(tmp_path)["logits"], logits)
