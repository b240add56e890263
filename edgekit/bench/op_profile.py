"""Host-measured time per operator type, from onnxruntime's built-in profiler (LiteRT's Python API has none)."""

from __future__ import annotations

import json
import tempfile
from collections import defaultdict
from pathlib import Path

import numpy as np

from edgekit.runtime.ort_session import open_session


def onnx_op_times(path: Path, x: np.ndarray, threads: int, runs: int = 20) -> dict[str, float]:
    """Milliseconds per inference spent in each ONNX operator type (fused kernels keep ORT's names)."""
    with tempfile.TemporaryDirectory() as tmp:
        session = open_session(path, threads, profile_prefix=str(Path(tmp) / "ort"))
        feed = {session.get_inputs()[0].name: np.ascontiguousarray(x, dtype=np.float32)}
        for _ in range(3):
            session.run(None, feed)
        start_runs = 3
        for _ in range(runs):
            session.run(None, feed)
        events = json.loads(Path(session.end_profiling()).read_text(encoding="utf-8"))
    totals: dict[str, float] = defaultdict(float)
    model_runs = [e for e in events if e.get("cat") == "Session" and e.get("name") == "model_run"]
    first_timed = model_runs[start_runs]["ts"] if len(model_runs) > start_runs else 0
    for e in events:
        if e.get("cat") == "Node" and e.get("name", "").endswith("_kernel_time") and e["ts"] >= first_timed:
            totals[e.get("args", {}).get("op_name", "?")] += e["dur"] / 1e3
    return {op: round(ms / runs, 4) for op, ms in sorted(totals.items(), key=lambda kv: -kv[1])}
