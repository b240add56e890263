"""How a detection teacher's predictions should teach: distill the same student from the same teacher with each
variant of the KD terms, and score it on the VALIDATION split (the test split stays for the chain benchmark).

Usage: python benchmarks/detect_kd_sweep.py --run RUN_DIR [--variants scratch,kl,...] [--epochs N]
RUN_DIR is a finished ``edgekit compress`` run on the data (its settings, data and teacher stage are reused;
nothing in it is written). Results: benchmarks/results/detect_kd_sweep_<name>.md/.json (``--name``).

Variants (alpha and T are the run's; ``radius`` restricts a YOLO teacher's mapping to cells whose centre is within
1.5 strides of the predicted box's centre, as the ground truth's assignment does):
  scratch  alpha 0 (ground truth only)
  kl       binary KL at T summed over every cell and class / positives (the loss as of this script's commit)
  kl_r     kl with the centre-radius mapping
  qfl      quality focal loss against the teacher's score as a soft target (T 1)
  qfl_r    qfl with the centre-radius mapping
A variant may change settings: ``scratch:lr=0.005``, ``qfl_r:gt_weight=1`` (keys lr, alpha, gt_weight, batch,
seed: ``kl_r:seed=1`` repeats a variant with another initialisation and augmentation draw, to see the noise).
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

VARIANTS = {
    "scratch": {"alpha": 0.0},
    "kl": {"score_loss": "kl", "radius": None},
    "kl_r": {"score_loss": "kl", "radius": 1.5},
    "qfl": {"score_loss": "qfl", "radius": None},
    "qfl_r": {"score_loss": "qfl", "radius": 1.5},
}


def parse_variant(text: str) -> tuple[str, dict]:
    """``name`` or ``name:key=value,...`` (keys: lr, alpha, gt_weight, batch, seed): a variant with settings changed."""
    name, _, extra = text.partition(":")
    overrides = {k: float(v) for k, v in (item.split("=") for item in extra.split(",") if item)}
    unknown = set(overrides) - {"lr", "alpha", "gt_weight", "batch", "seed"}
    if name not in VARIANTS or unknown:
        raise SystemExit(f"unknown variant {text!r}: names {sorted(VARIANTS)}, keys lr, alpha, gt_weight, batch, seed")
    return name, {**VARIANTS[name], **overrides}


def run_variant(ctx, text: str, epochs: int) -> dict:
    import torch

    from edgekit.detect.evaluate import map_of
    from edgekit.tasks.detect import STUDENT_NECK, distill_loss

    name, v = parse_variant(text)
    if "batch" in v:
        ctx = dataclasses.replace(ctx, settings=dataclasses.replace(ctx.settings, batch_size=int(v["batch"])))
    if "seed" in v:  # the split is the data's own (train/val folders), so only initialisation and draws change
        ctx = dataclasses.replace(ctx, settings=dataclasses.replace(ctx.settings, seed=int(v["seed"])))
    s, task = ctx.settings, ctx.task
    alpha = v.get("alpha", s.alpha)
    teacher = None
    if alpha > 0:
        teacher = task.load_teacher(ctx.out / "teacher")
        if hasattr(teacher, "centre_radius"):
            teacher.centre_radius = v.get("radius")
    torch.manual_seed(s.seed)
    model = task.build_model({"num_classes": len(ctx.data.classes), "width": s.width, "neck": STUDENT_NECK})
    loss, _ = distill_loss(alpha, s.temperature, teacher)  # the distill stage's own set-up
    loss.score_loss = v.get("score_loss", "kl")
    if "gt_weight" in v:
        loss.gt_weight = v["gt_weight"]
    lr = v.get("lr", s.distill_lr)
    start = time.perf_counter()
    history = task._train(ctx, model, loss, teacher, epochs=epochs, lr=lr, seed=s.seed, stage=text)
    seconds = time.perf_counter() - start
    model.eval()
    val = map_of(model, ctx.data, ctx.images("val"), "val")
    return {"variant": text, **v, "alpha": alpha, "lr": lr, "epochs": epochs, "seconds": round(seconds, 1),
            "val_map50": round(val["map50"], 4), "val_map50_95": round(val["map50_95"], 4), "last_epoch": history[-1]}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--run", type=Path, required=True)
    ap.add_argument("--variants", default="scratch,kl,kl_r,qfl,qfl_r")
    ap.add_argument("--epochs", type=int, default=None, help="default: the run's distill epochs")
    ap.add_argument("--name", default="aquarium")
    args = ap.parse_args()

    from edgekit.config import build_settings, recorded_settings
    from edgekit.stages.context import StageContext

    ctx = StageContext(settings=build_settings(recorded_settings(args.run), {}), out=args.run)
    epochs = args.epochs or ctx.settings.distill_epochs
    results_dir = Path(__file__).parent / "results"
    json_path = results_dir / f"detect_kd_sweep_{args.name}.json"
    done = json.loads(json_path.read_text())["rows"] if json_path.exists() else []
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True,
                            cwd=Path(__file__).parent).stdout.strip()
    teacher_kind = json.loads((args.run / "teacher" / "model.json").read_text()).get("kind")
    for name in args.variants.split(","):
        row = run_variant(ctx, name, epochs)
        row.update(commit=commit, teacher=teacher_kind, date=datetime.now(timezone.utc).isoformat(timespec="seconds"))
        print(json.dumps(row), flush=True)
        done = [r for r in done if not (r["variant"] == name and r["teacher"] == teacher_kind
                                        and r["epochs"] == epochs)] + [row]
        json_path.write_text(json.dumps({"command": "python benchmarks/detect_kd_sweep.py --run RUN "
                                         f"--variants ... --name {args.name}", "run": str(args.run),
                                         "machine": f"{platform.processor() or platform.machine()}, 2 cores",
                                         "rows": done}, indent=1))
        (results_dir / f"detect_kd_sweep_{args.name}.md").write_text(render(done, args))
    return 0


def render(rows: list[dict], args: argparse.Namespace) -> str:
    lines = [f"# Detection KD variants ({args.name}), scored on the validation split", "",
             f"Command: `python benchmarks/detect_kd_sweep.py --run {args.run} --variants ... --name {args.name}`  ",
             "Each row: the run's student (same seed, same augmentation), distilled for `epochs` from the run's "
             "teacher with the variant's KD terms (see the script's docstring); mAP on `val`, not `test`.", "",
             "| Teacher | Variant | Epochs | val mAP50 | val mAP50-95 | Train s | Last epoch's loss terms | Commit | Date |",
             "|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        terms = ", ".join(f"{k} {v:.3g}" for k, v in r["last_epoch"].items())
        lines.append(f"| {r['teacher']} | {r['variant']} | {r['epochs']} | {r['val_map50']:.4f} | "
                     f"{r['val_map50_95']:.4f} | {r['seconds']:.0f} | {terms} | {r['commit']} | {r['date']} |")
    notes = json.loads(NOTES.read_text()) if NOTES.exists() else []
    return "\n".join(lines + ([""] + [f"Note: {n}" for n in notes] if notes else [])) + "\n"


NOTES = Path(__file__).parent / "results" / "detect_kd_sweep_notes.json"  # hand-written notes kept across reruns


if __name__ == "__main__":
    raise SystemExit(main())
