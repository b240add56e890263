"""Which QAT loss mix and learning rate: quantization-aware training of a finished run's FP32 student with each
(alpha, lr, epochs), scored as PyTorch INT8 on the VALIDATION split (the test split stays for benchmarks/peers.py).

Usage: python benchmarks/qat_sweep.py --run RUN_DIR --variants "0.7/0.005/3,0.3/0.005/3,0/0.005/3" [--name NAME]
Each variant is alpha/lr/epochs: alpha weighs KD from the run's teacher at its temperature (0: labels only, as
NNCF's QAT trains). Nothing in RUN_DIR is written except the soft-label cache it already keeps.
Results: benchmarks/results/qat_sweep_<name>.md/.json.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import platform
import subprocess
import time
from datetime import datetime, timezone
from pathlib import Path


def run_variant(ctx, alpha: float, lr: float, epochs: int) -> dict:
    import torch

    from edgekit.models.stage_models import guide_folder
    from edgekit.pipeline.runner import stage_dir
    from edgekit.quantize import pt2e

    s = dataclasses.replace(ctx.settings, alpha=alpha, qat_lr=lr, qat_epochs=epochs)
    vctx = dataclasses.replace(ctx, settings=s)
    task = vctx.task
    torch.manual_seed(s.seed)
    student = task.load_student(stage_dir(ctx.out, "distill"))
    prepared = pt2e.prepare(student, vctx.images("train")[:2], "qat", s.weight_range)
    teacher = task.load_teacher(guide_folder(ctx.out)) if alpha > 0 else None
    pt2e.to_train(prepared)
    start = time.perf_counter()
    task.train_qat(vctx, prepared, teacher)
    seconds = time.perf_counter() - start
    pt2e.to_eval(prepared)
    int8 = pt2e.convert(prepared)
    scores = task.score(vctx.data, "val", task.outputs(int8, vctx.images("val")))
    return {"alpha": alpha, "lr": lr, "epochs": epochs, "seconds": round(seconds, 1),
            "val": round(scores[task.metric.key], 4)}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--run", type=Path, required=True)
    ap.add_argument("--variants", required=True, help="alpha/lr/epochs, comma-separated")
    ap.add_argument("--name", default="cifar10_budget")
    args = ap.parse_args()

    from edgekit.config import build_settings, recorded_settings
    from edgekit.stages.context import StageContext

    ctx = StageContext(settings=build_settings(recorded_settings(args.run), {}), out=args.run)
    results = Path(__file__).parent / "results"
    json_path = results / f"qat_sweep_{args.name}.json"
    rows = json.loads(json_path.read_text())["rows"] if json_path.exists() else []
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True,
                            cwd=Path(__file__).parent).stdout.strip()
    for text in args.variants.split(","):
        alpha, lr, epochs = text.split("/")
        row = run_variant(ctx, float(alpha), float(lr), int(epochs))
        row.update(commit=commit, date=datetime.now(timezone.utc).isoformat(timespec="seconds"))
        print(json.dumps(row), flush=True)
        rows = [r for r in rows if (r["alpha"], r["lr"], r["epochs"]) != (row["alpha"], row["lr"], row["epochs"])]
        rows.append(row)
        json_path.write_text(json.dumps({"run": str(args.run), "machine": f"{platform.machine()}, 2 cores",
                                         "rows": rows}, indent=1))
        (results / f"qat_sweep_{args.name}.md").write_text(render(rows, args))
    return 0


def render(rows: list[dict], args: argparse.Namespace) -> str:
    lines = [f"# QAT loss mix and learning rate ({args.name}), PyTorch INT8 on the validation split", "",
             f"Command: `python benchmarks/qat_sweep.py --run {args.run} --variants ALPHA/LR/EPOCHS,... "
             f"--name {args.name}`  ",
             "The run's FP32 student, prepared for QAT as the quantize stage does, trained with KD at the run's "
             "temperature and weight alpha (0: labels only), then converted; accuracy on `val`, not `test`.", "",
             "| alpha | QAT lr | Epochs | val accuracy % | Train s | Commit | Date |", "|---|---|---|---|---|---|---|"]
    for r in sorted(rows, key=lambda r: (r["epochs"], -r["alpha"], -r["lr"])):
        lines.append(f"| {r['alpha']} | {r['lr']} | {r['epochs']} | {100 * r['val']:.2f} | {r['seconds']:.0f} | "
                     f"{r['commit']} | {r['date']} |")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    raise SystemExit(main())
