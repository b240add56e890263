"""DKD's own settings on the CIFAR-10 methods budget: which of them puts it below KD.

    python benchmarks/dkd_sweep.py --from benchmarks/.cache/methods_dkd2 [--variants NAME,...] [--seeds 0]

Reuses the teacher and the soft-label cache of a ``benchmarks/distill_methods.py`` run (``--from``, its
``--out``; give the same subset and epoch arguments), and trains the student once per variant with the distill stage only (same data, epochs, seed,
augmentation as that run; no QAT: INT8 TFLite tracked the FP32 student within 0.3 point in every
methods run). Each variant changes one thing against DKD's defaults; ``kd`` is the reference.
Variants set DKD's constructor arguments (TCKD/NCKD weights, warm-up) by wrapping the class the method
registry builds, a benchmark-only switch: the settings a user has are DKD's defaults.

Writes benchmarks/results/dkd_sweep.{json,md}.
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import platform
import sys
from datetime import datetime, timezone
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from cifar10_chain import RESULTS, add_subset_args, subset_or_skip  # noqa: E402
from distill_methods import linked_teacher  # noqa: E402
from dkd_vs_kd import commit  # noqa: E402

# name: (method, temperature, alpha, DKD keyword arguments)
VARIANTS: dict[str, tuple[str, float, float, dict]] = {
    "kd": ("kd", 4.0, 0.7, {}),
    "dkd": ("dkd", 4.0, 0.7, {}),
    "dkd_no_warmup": ("dkd", 4.0, 0.7, {"warmup": 0.0}),
    "dkd_nckd_0.5": ("dkd", 4.0, 0.7, {"nckd_weight": 0.5}),
    "dkd_nckd_2": ("dkd", 4.0, 0.7, {"nckd_weight": 2.0}),
    "dkd_t2": ("dkd", 2.0, 0.7, {}),
    "kd_t2": ("kd", 2.0, 0.7, {}),
    "dkd_alpha_0.9": ("dkd", 4.0, 0.9, {}),
    "kd_alpha_0.9": ("kd", 4.0, 0.9, {}),
    "dkd_alpha_0.9_nckd_0.5": ("dkd", 4.0, 0.9, {"nckd_weight": 0.5}),
    "dkd_alpha_0.9_t2": ("dkd", 2.0, 0.9, {}),
}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--from", dest="source", type=Path, required=True, help="a distill_methods.py --out folder")
    parser.add_argument("--variants", default=",".join(VARIANTS))
    parser.add_argument("--seeds", default="0", help="comma-separated student seeds (NAME@SEED in --variants: that seed only)")
    parser.add_argument("--name", default="dkd_sweep")
    parser.add_argument("--epochs", type=int, default=12, help="as the --from run's")
    parser.add_argument("--teacher-epochs", type=int, default=10, help="as the --from run's")
    add_subset_args(parser, 500)
    args = parser.parse_args()

    import edgekit.distill.methods as methods
    from edgekit.config import Settings
    from edgekit.distill.losses import DKD
    from edgekit.chain import run_chain
    from edgekit.stages.context import StageContext

    data = subset_or_skip(args)
    if data is None:
        return 0
    # distill_methods.py's settings for its runs, so the soft labels and the teacher are that run's
    common = dict(data=str(data), hflip=True, teacher_epochs=args.teacher_epochs, distill_epochs=args.epochs,
                  soft_label_cache=str((args.source / "soft_labels").resolve()))
    rows = []
    for name in ("kd", "dkd"):  # the --from run's own students: seed 0, DKD's defaults at that run's commit
        stage = args.source / name / "distill" / "stage.json"
        if stage.is_file():
            record = json.loads(stage.read_text())
            rows.append({"variant": f"{name} (the --from run)", "seed": 0, "method": name, "temperature": 4.0, "alpha": 0.7,
                         "dkd": {}, "pytorch_fp32": record["result"]["accuracy"], "seconds": record["seconds"]})
    seeds = [int(seed) for seed in args.seeds.split(",")]
    runs = [(name.partition("@")[0], int(name.partition("@")[2])) if "@" in name else (name, seed)
            for name in args.variants.split(",") for seed in (seeds[:1] if "@" in name else seeds)]
    for name, seed in runs:
        method, temperature, alpha, dkd_kwargs = VARIANTS[name]
        run = args.source / "sweep" / f"{name}_seed{seed}"
        linked_teacher(run, args.source / "teacher_a")
        methods.DKD = functools.partial(DKD, **dkd_kwargs)
        settings = Settings(**common, method=method, temperature=temperature, alpha=alpha, seed=seed)
        run_chain(StageContext(settings, run), ["distill"])  # a variant already trained is up to date
        record = json.loads((run / "distill" / "stage.json").read_text())
        row = {"variant": name, "seed": seed, "method": method, "temperature": temperature, "alpha": alpha,
               "dkd": dkd_kwargs, "pytorch_fp32": record["result"]["accuracy"], "seconds": record["seconds"],
               "finished_at": record["finished_at"]}
        rows.append(row)
        print(json.dumps(row), flush=True)
    methods.DKD = DKD
    result = {"command": "python benchmarks/dkd_sweep.py " + " ".join(sys.argv[1:]), "commit": commit(),
              "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
              "machine": {"cpu": platform.processor() or platform.machine(), "cores": os.cpu_count(),
                          "python": platform.python_version()},
              "budget": {k: common[k] for k in ("teacher_epochs", "distill_epochs")}, "rows": rows}
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / f"{args.name}.json").write_text(json.dumps(result, indent=2) + "\n")
    lines = ["# DKD's settings on the CIFAR-10 methods budget", "",
             f"Command: `{result['command']}` at {result['commit']}  ", f"Date: {result['date']}  ",
             f"Budget: the `--from` run's data, teacher and soft labels; students {common['distill_epochs']} epochs, "
             "distill stage only (PyTorch FP32 test accuracy, no QAT).", "",
             "| Variant | Seed | Method | T | alpha | DKD arguments | PyTorch FP32 % | Seconds |", "|---|---|---|---|---|---|---|---|"]
    for r in rows:
        lines.append(f"| {r['variant']} | {r['seed']} | {r['method']} | {r['temperature']} | {r['alpha']} | "
                     f"{json.dumps(r['dkd']) if r['dkd'] else 'defaults'} | {100 * r['pytorch_fp32']:.2f} | {r['seconds']} |")
    (RESULTS / f"{args.name}.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
