"""INT8 ONNX accuracy under onnxruntime's integer kernels on this host: default, precise, and unfused.

    python benchmarks/onnx_int8_kernels.py RUN_DIR

RUN_DIR is a finished `edgekit compress` run (for example the one benchmarks/digits_compress.py leaves
in /tmp). Its model_int8.onnx runs on the run's test split three ways:
- default: onnxruntime's fused QLinearConv with the U8S8 kernel (saturates on x86 without VNNI);
- precise: the same fusion with ``session.x64quantprecision = 1`` (U8U8; what edgekit measures with);
- unfused: graph optimisation at the basic level, so Q/DQ pairs run as float arithmetic, the
  reference an integer kernel without saturation should match.
Beside them, the run's PyTorch INT8 accuracy (quantize stage). Writes
benchmarks/results/onnx_int8_kernels.{json,md}.
"""

from __future__ import annotations

import json
import platform
import sys
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"


def accuracy(path: Path, x: np.ndarray, y: np.ndarray, ref: np.ndarray, how: str) -> dict[str, Any]:
    import onnxruntime as ort

    from edgekit.runtime.ort_session import SESSION_CONFIG

    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    options.log_severity_level = 3
    if how == "precise":
        for key, value in SESSION_CONFIG.items():
            options.add_session_config_entry(key, value)
    if how == "unfused":
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_BASIC
    session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    predicted = session.run(None, {session.get_inputs()[0].name: x})[0].argmax(1)
    return {"kernels": how, "accuracy": float((predicted == y).mean()), "agreement_with_pytorch_int8": float((predicted == ref).mean())}


def main() -> int:
    if len(sys.argv) != 2:
        print(__doc__)
        return 2
    run = Path(sys.argv[1])
    from edgekit.models.predictions import load_logits
    from edgekit.config import Settings
    from edgekit.stages.context import StageContext

    record = json.loads((run / "report.json").read_text())
    ctx = StageContext(Settings(**record["settings"]), run)
    x, y = ctx.eval_split()
    ref = load_logits(run / "quantize").argmax(1).numpy()
    path = run / "artifacts" / "model_int8.onnx"
    rows = [accuracy(path, x.numpy(), y.numpy(), ref, how) for how in ("default", "precise", "unfused")]
    quant = json.loads((run / "quantize" / "stage.json").read_text())["result"]
    result = {"command": f"python benchmarks/onnx_int8_kernels.py {run}",
              "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
              "host": record["host"], "onnxruntime": record["versions"].get("onnxruntime"),
              "file": {"name": path.name, "sha256": next(a["sha256"] for a in record["artifacts"] if a["name"] == path.name)},
              "test_images": int(len(y)), "pytorch_int8_accuracy": quant["accuracy"], "rows": rows}
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "onnx_int8_kernels.json").write_text(json.dumps(result, indent=2) + "\n")
    lines = ["# INT8 ONNX under onnxruntime's integer kernels on this host", "",
             f"Command: `{result['command']}`  ", f"Date: {result['date']}  ",
             f"Host: {result['host'].get('cpu')}, onnxruntime {result['onnxruntime']}; {path.name} "
             f"(sha256 {result['file']['sha256'][:12]}), {result['test_images']} test images  ",
             f"PyTorch INT8 (the quantize stage's graph): {100 * result['pytorch_int8_accuracy']:.2f} %", "",
             "| Kernels | Test accuracy % | Top-1 agreement with PyTorch INT8 % |", "|---|---|---|"]
    for r in rows:
        lines.append(f"| {r['kernels']} | {100 * r['accuracy']:.2f} | {100 * r['agreement_with_pytorch_int8']:.2f} |")
    (RESULTS / "onnx_int8_kernels.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
