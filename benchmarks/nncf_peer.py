"""NNCF's quantization-aware training of a finished run's FP32 student: the third peer of benchmarks/peers.py.

What an NNCF user does, with the run's own recipe wherever NNCF leaves a choice open:
1. ``nncf.quantize`` with its defaults (performance preset: symmetric int8 weights per channel, int8 activations per
   tensor, fast bias correction), calibrated on the same seeded 1,024 training images as the other peers;
2. fine-tuning of that model with the labels (NNCF's QAT has no teacher) for the run's QAT epochs, through edgekit's
   own training loop: the same SGD, one-cycle schedule, learning rate, batch size, flips and shifts as the run's QAT;
3. ``nncf.strip`` (NNCF's quantizers become torch FakeQuantize modules) and ``torch.onnx.export`` with the TorchScript
   exporter, which writes them as QuantizeLinear/DequantizeLinear pairs: NNCF's documented way to an ONNX file.

NNCF is a benchmark extra (``pip install -e '.[bench]'``), never a dependency of edgekit itself.
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np


def _train_split(run: Path, report: dict):  # noqa: ANN202 - (images NCHW float, labels)
    from onnx_int8_peer import run_image_data  # a sibling script (benchmarks/ is on sys.path for peers.py)

    spec, data = run_image_data(run, report)
    images, labels = data.splits["train"]
    return spec.normalize(images), labels


def _supervised(logits, _teacher, y):  # noqa: ANN001, ANN202 - the train loop's loss signature
    import torch.nn.functional as F

    loss = F.cross_entropy(logits, y)
    return loss, {"ce": float(loss.detach())}


def nncf_qat(run: Path, report: dict, calibration: np.ndarray, out: Path) -> dict:
    """Write NNCF's QAT ONNX file of the run's student to ``out``; returns what was done and how long it took."""
    import nncf
    import torch

    from edgekit.distill.train_loop import train
    from edgekit.models.stage_models import load_student

    s = report["settings"]
    torch.manual_seed(s["seed"])
    started = time.perf_counter()
    student = load_student(run / "distill").eval()
    batches = [torch.from_numpy(calibration[i:i + 32]) for i in range(0, len(calibration), 32)]
    quantized = nncf.quantize(student, nncf.Dataset(batches), subset_size=len(batches))
    calibrated = time.perf_counter()
    x, y = _train_split(run, report)
    history = train(quantized, x, torch.as_tensor(y), loss_fn=_supervised, epochs=s["qat_epochs"], lr=s["qat_lr"],
                    batch_size=s["batch_size"], hflip=s["hflip"], seed=s["seed"] + 1, stage="NNCF QAT")
    trained = time.perf_counter()
    quantized.eval()
    example = torch.from_numpy(calibration[:1])
    stripped = nncf.strip(quantized, do_copy=True, example_input=example)
    torch.onnx.export(stripped, (example,), str(out), dynamo=False, opset_version=13, input_names=["input"],
                      output_names=["logits"], dynamic_axes={"input": {0: "batch"}, "logits": {0: "batch"}})
    return {"epochs": s["qat_epochs"], "lr": s["qat_lr"], "train_images": int(len(x)),
            "loss_per_epoch": [round(h.get("ce", h.get("loss", float("nan"))), 4) for h in history],
            "seconds": {"calibrate": round(calibrated - started, 1), "train": round(trained - calibrated, 1),
                        "export": round(time.perf_counter() - trained, 1)}}
