"""Operator summaries of the reference networks, computed once and shipped as reference_costs.json.

    python -m edgekit.estimate.reference_costs      # rewrites reference_costs.json (about 2 minutes)

Each network is exported to ONNX with edgekit's own exporter and walked by the same code that walks
a user's artifact, so calibration and estimate see graphs the same way.
"""

from __future__ import annotations

import json
import sys
import tempfile
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import Any

from edgekit.estimate.features import CostFeatures, features_of

FILE = "reference_costs.json"


def summarize_reference(name: str, folder: Path) -> dict[str, Any]:
    import torch

    from edgekit.estimate.onnx_graph import onnx_ops
    from edgekit.estimate.op_costs import summarize
    from edgekit.estimate.reference_nets import REFERENCE_NETS
    from edgekit.export.onnx_format import export_onnx

    build, size = REFERENCE_NETS[name]
    model = build().eval()
    path = folder / f"{name}.onnx"
    export_onnx(model, torch.zeros(1, 3, size, size), path, {})
    summary = summarize(onnx_ops(path))
    if hasattr(model, "postprocess_elements"):
        elements = model.postprocess_elements(size)
        summary["kinds"]["postprocess"] = {"ops": 1, "macs": elements, "act_bytes": 4 * elements, "weight_bytes": 0}
    summary["input_size"] = size
    summary["params"] = sum(p.numel() for p in model.parameters())
    return summary


@lru_cache(maxsize=1)
def reference_summaries() -> dict[str, dict[str, Any]]:
    return json.loads(resources.files("edgekit.estimate").joinpath(FILE).read_text(encoding="utf-8"))


def reference_features() -> dict[str, CostFeatures]:
    return {name: features_of(summary) for name, summary in reference_summaries().items()}


def main() -> int:
    """Rewrite reference_costs.json; ``--only NAME ...`` recomputes those networks and keeps the others."""
    from edgekit.estimate.reference_nets import REFERENCE_NETS

    target = Path(__file__).with_name(FILE)
    only = sys.argv[sys.argv.index("--only") + 1:] if "--only" in sys.argv else list(REFERENCE_NETS)
    out: dict[str, Any] = json.loads(target.read_text(encoding="utf-8")) if "--only" in sys.argv else {}
    with tempfile.TemporaryDirectory() as tmp:
        for name in only:
            out[name] = summarize_reference(name, Path(tmp))
            print(f"{name}: {out[name]['macs'] / 1e6:.1f} M MACs, {out[name]['ops']} operators", flush=True)
    target.write_text(json.dumps(out, indent=1, sort_keys=True) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
