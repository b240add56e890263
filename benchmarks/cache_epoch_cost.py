"""What a distillation epoch costs against a plain one, with the soft-label cache warm and cold, measured paired.

    python benchmarks/cache_epoch_cost.py [--train-per-class 500] [--rounds 5]

The per-epoch column of distill_methods.md times each method in its own stretch of the run, and on a
shared 2-core host one epoch's time wanders by up to 2x from minute to minute (there: 3.4 to 7.3 s for
the same work). Here every round trains one epoch of each configuration back to back, so all of them see
the same host; the ratio to scratch is taken within each round and the median over rounds reported. The
order rotates from round to round, so no configuration is always the first (or follows the same one).

Configurations: scratch (labels only), then kd, dkd, fitnet, at, rkd and kd+at reading the cache (warm;
one teacher pass fills it first, distill/prefill.py), and kd with the teacher running at every step (cold).
Teacher: the trained ResNet-18 of benchmarks/distill_methods.py (its run folder), student MobileNetV2
x0.35, 32x32 CIFAR-10 images, batch 64, the training loop of every stage (distill/train_loop.py).
Writes benchmarks/results/cache_epoch_cost.{json,md}.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path
from statistics import median

sys.path.insert(0, str(Path(__file__).resolve().parent))
from cifar10_chain import CACHE, RESULTS, add_subset_args, subset_or_skip  # noqa: E402

WARM = ("kd", "dkd", "fitnet", "at", "rkd", "kd+at")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_subset_args(parser, 500)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--teacher", type=Path, default=CACHE / "methods" / "teacher_a" / "teacher",
                        help="a teacher stage folder (default: distill_methods.py's)")
    args = parser.parse_args()
    data = subset_or_skip(args)
    if data is None:
        return 0
    if not (args.teacher / "stage.json").is_file():
        print(f"no teacher stage at {args.teacher}: run `python benchmarks/distill_methods.py` first, or pass --teacher",
              file=sys.stderr)
        return 2

    import torch

    from edgekit.config import Settings
    from edgekit.distill.cache_policy import soft_label_cache
    from edgekit.distill.losses import DistillLoss
    from edgekit.distill.method_spec import parse_method
    from edgekit.distill.methods import build_loss
    from edgekit.distill.prefill import prefill_soft_labels
    from edgekit.distill.soft_label_cache import SoftLabelCache
    from edgekit.distill.train_loop import train
    from edgekit.models.builders import build_model, student_spec
    from edgekit.models.stage_models import load_teacher
    from edgekit.stages.context import StageContext

    settings = Settings(data=str(data), hflip=True, distill_epochs=1)
    with tempfile.TemporaryDirectory() as tmp:
        settings.soft_label_cache = str(Path(tmp) / "soft_labels")
        ctx = StageContext(settings, Path(tmp) / "run")
        x, y = ctx.split("train")
        classes = len(ctx.data.classes)
        teacher = load_teacher(args.teacher)
        for p in teacher.parameters():
            p.requires_grad_(False)

        def student() -> torch.nn.Module:
            torch.manual_seed(0)
            return build_model(student_spec(settings.student, settings.width, classes)).train()

        def loss_for(method: str, model: torch.nn.Module) -> DistillLoss:
            alpha = 0.0 if method == "scratch" else settings.alpha
            return build_loss(parse_method("kd" if method in ("scratch", "kd cold") else method), model, teacher,
                              settings.size, temperature=settings.temperature, alpha=alpha)

        cache = soft_label_cache(settings, ctx.out, teacher, x, settings.seed)
        filled = prefill_soft_labels(teacher, loss_for("kd+fitnet+at+rkd", student()), x, cache, epochs=1,
                                     augment_seed=settings.seed, hflip=True, batch_size=settings.batch_size)
        configs = ["scratch", *WARM, "kd cold"]
        seconds: dict[str, list[float]] = {c: [] for c in configs}
        for r in range(args.rounds):
            for name in configs[r % len(configs):] + configs[:r % len(configs)]:  # each round starts elsewhere
                model = student()
                timings: list[float] = []
                stats: dict[str, int] = {}
                train(model, x, y, loss_fn=loss_for(name, model), teacher=None if name == "scratch" else teacher,
                      epochs=1, lr=settings.distill_lr, batch_size=settings.batch_size, seed=settings.seed,
                      stage=f"{name} (round {r + 1})", hflip=True, timings=timings, cache_stats=stats,
                      soft_labels=None if name in ("scratch", "kd cold") else  # fresh counters, the same entries
                      SoftLabelCache(Path(settings.soft_label_cache), cache.identity, len(x), cache.limit_bytes))
                if name in WARM and stats.get("read") != 1:
                    raise SystemExit(f"{name}: the cache was not read ({stats}); the timing would be a cold one")
                seconds[name].append(timings[0])
            print(f"round {r + 1}: " + ", ".join(f"{c} {seconds[c][-1]:.2f} s" for c in configs), flush=True)

    rows = []
    for name in configs:
        ratios = [s / base for s, base in zip(seconds[name], seconds["scratch"])]
        rows.append({"config": name, "cache": "none" if name == "scratch" else "cold" if name == "kd cold" else "warm",
                     "epoch_seconds": seconds[name], "median_seconds": round(median(seconds[name]), 3),
                     "ratios": [round(v, 3) for v in ratios], "median_ratio": round(median(ratios), 3)})
    result = {"command": "python benchmarks/cache_epoch_cost.py " + " ".join(sys.argv[1:]),
              "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
              "machine": {"cpu": platform.processor() or platform.machine(), "cores": os.cpu_count(),
                          "python": platform.python_version()},
              "train_images": len(y), "rounds": args.rounds, "teacher": str(args.teacher), "prefill": filled,
              "goal": "warm epoch <= 1.15x scratch", "rows": rows}
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "cache_epoch_cost.json").write_text(json.dumps(result, indent=2) + "\n")
    lines = ["# Distillation epoch against a plain epoch, paired rounds", "",
             f"Command: `{result['command']}`  ", f"Date: {result['date']}  ",
             f"Machine: {result['machine']['cpu']}, {result['machine']['cores']} cores, Python {result['machine']['python']}  ",
             f"{len(y)} training images (CIFAR-10, 32x32), batch 64, teacher ResNet-18 ({args.teacher}), student "
             f"MobileNetV2 x0.35; {args.rounds} rounds, each one epoch of every configuration back to back, the order "
             "rotated by one configuration each round. "
             f"Prefill (one teacher pass writing every part of kd+fitnet+at+rkd for the epoch): {filled['seconds']} s.", "",
             "| Configuration | Cache | Median s/epoch | Median ratio to scratch (paired) | Ratios per round |",
             "|---|---|---|---|---|"]
    for r in rows:
        lines.append(f"| {r['config']} | {r['cache']} | {r['median_seconds']:.2f} | {r['median_ratio']:.2f} | "
                     f"{', '.join(f'{v:.2f}' for v in r['ratios'])} |")
    (RESULTS / "cache_epoch_cost.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
