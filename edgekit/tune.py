"""``edgekit tune``: search T, alpha and the method with Optuna, on the validation split, by short runs.

Each trial is a real distill stage in ``<out>/trials/<n>/`` (fingerprinted and checkpointed like any
other), learning from the one teacher of ``<out>/teacher`` and reading the soft labels that earlier
trials share in ``<out>/.soft_labels``: before the first trial, one pass of the teacher fills it with
everything the methods read (distill/prefill.py), so no trial runs the teacher. The sampler is Optuna's
TPE, seeded, so rerunning the same command after an interruption asks for the same trials again and
finds the finished ones up to date.

The best trial's settings are written as ``<out>/best.toml``, which ``compress --config`` takes; every
trial is listed in ``<out>/tune.json`` and ``tune.md``.
"""

from __future__ import annotations

import dataclasses
import os
import time
from pathlib import Path
from typing import Any

from edgekit.config import Settings
from edgekit.distill.method_spec import parse_method
from edgekit.errors import EdgekitError
from edgekit.stages.context import StageContext

DEFAULT_METHODS = ("kd", "dkd", "at", "rkd", "fitnet")
T_RANGE = (1.0, 10.0)
ALPHA_RANGE = (0.1, 0.95)


def parse_methods(text: str) -> list[str]:
    methods = [m.strip() for m in text.split(",") if m.strip()]
    if not methods:
        raise EdgekitError("--methods is empty", "give comma-separated methods, e.g. --methods kd,dkd,at")
    for m in methods:
        parse_method(m)  # names a bad one
    return methods


def trial_folder(out: Path, number: int) -> Path:
    """``<out>/trials/<n>`` with its ``teacher`` pointing at the tuning run's teacher."""
    folder = Path(out) / "trials" / f"{number:03d}"
    folder.mkdir(parents=True, exist_ok=True)
    link = folder / "teacher"
    if not link.exists():
        os.symlink(os.path.relpath(Path(out) / "teacher", folder), link)
    return folder


def run_trial(ctx: StageContext, number: int, method: str, temperature: float, alpha: float,
              epochs: int) -> tuple[float, float]:
    """Distil with these settings in the trial's folder; the student's validation accuracy and the seconds taken."""
    from edgekit.distill.train_loop import accuracy, predict
    from edgekit.models.stage_models import load_student
    from edgekit.stages import distill

    settings = dataclasses.replace(ctx.settings, method=method, temperature=temperature, alpha=alpha,
                                   distill_epochs=epochs, soft_label_cache=trial_cache(ctx))
    trial = StageContext(settings=settings, out=trial_folder(ctx.out, number), console=ctx.console)
    started = time.perf_counter()
    distill.run(trial)  # on the trial's distill settings (StageContext.for_stage)
    x_val, y_val = ctx.split("val")
    val = accuracy(predict(load_student(trial.out / "distill"), x_val), y_val)
    return val, round(time.perf_counter() - started, 1)


def trial_cache(ctx: StageContext) -> str:
    """The trials' shared soft-label folder: the one ``soft_label_cache`` names, else ``<out>/.soft_labels``."""
    if ctx.settings.soft_label_cache not in ("auto", "off"):
        return str(Path(ctx.settings.soft_label_cache).resolve())
    return str(Path(ctx.out).resolve() / ".soft_labels")


def prefill_trials(ctx: StageContext, methods: list[str], epochs: int) -> dict[str, Any] | None:
    """Fill the trials' soft-label cache for all ``methods`` at once; None when there is nothing to fill."""
    from edgekit.distill.prefill import prefill_for_run

    result = prefill_for_run(ctx.for_stage("distill"), methods, epochs, trial_cache(ctx))
    if result is None:
        return None
    union = result["method"]
    ctx.console.print(f"tune: the teacher's side of {union} for {epochs} epoch(s): {result['epochs_written']} "
                      f"computed, {result['epochs_found']} already cached ({result['seconds']} s)",
                      markup=False, highlight=False)
    return result


def search(ctx: StageContext, trials: int, methods: list[str], epochs: int) -> list[dict[str, Any]]:
    """Run the study; one row per trial (number, method, T, alpha, status, validation accuracy or the
    reason it failed, seconds).

    A trial that stops on an error a user can meet (the loss diverging to NaN, a method this teacher
    cannot serve: an :class:`EdgekitError`) is a result, not the end of the search: its row says
    ``"status": "failed"`` with the reason, Optuna records it as pruned, and the next trial runs.
    """
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(direction="maximize", sampler=optuna.samplers.TPESampler(seed=ctx.settings.seed))
    rows: list[dict[str, Any]] = []

    def objective(trial: optuna.Trial) -> float:
        method = trial.suggest_categorical("method", methods)
        temperature = round(trial.suggest_float("temperature", *T_RANGE, log=True), 3)
        alpha = round(trial.suggest_float("alpha", *ALPHA_RANGE), 3)
        row: dict[str, Any] = {"trial": trial.number, "method": method, "temperature": temperature, "alpha": alpha}
        started = time.perf_counter()
        try:
            val, seconds = run_trial(ctx, trial.number, method, temperature, alpha, epochs)
        except EdgekitError as failure:
            row.update(status="failed", val_accuracy=None, reason=" ".join(str(failure).split()),
                       seconds=round(time.perf_counter() - started, 1))
            rows.append(row)
            ctx.console.print(f"tune: trial {trial.number + 1}/{trials}: {method}, T {temperature}, alpha {alpha} -> "
                              f"failed ({row['reason']}); going on", markup=False, highlight=False)
            raise optuna.TrialPruned(str(failure)) from None
        row.update(status="complete", val_accuracy=val, seconds=seconds)
        rows.append(row)
        best = best_row(rows)
        ctx.console.print(f"tune: trial {trial.number + 1}/{trials}: {method}, T {temperature}, alpha {alpha} -> "
                          f"val accuracy {val:.4f} (best {best['val_accuracy']:.4f}, trial {best['trial'] + 1})",
                          markup=False, highlight=False)
        return val

    prefill_trials(ctx, methods, epochs)
    study.optimize(objective, n_trials=trials)
    return rows


def best_row(rows: list[dict[str, Any]]) -> dict[str, Any] | None:
    """The completed trial with the highest validation accuracy (the earliest of equals); None when none completed."""
    done = [r for r in rows if r.get("status", "complete") == "complete"]
    return max(done, key=lambda r: (r["val_accuracy"], -r["trial"])) if done else None


def best_config(settings: Settings, best: dict[str, Any]) -> str:
    """The TOML that `compress --config` takes: the chosen method, T and alpha (and the data it was tuned on)."""
    lines = ["# written by `edgekit tune`: the best of its trials on the validation split",
             f'method = "{best["method"]}"', f"temperature = {best['temperature']}", f"alpha = {best['alpha']}"]
    if settings.data:
        lines.append(f'data = "{settings.data}"')
    if settings.size != Settings().size:
        lines.append(f"size = {settings.size}")
    return "\n".join(lines) + "\n"


def write_reports(out: Path, settings: Settings, rows: list[dict[str, Any]], epochs: int) -> dict[str, Any]:
    """tune.json (every trial, failed ones with their reason), tune.md (the same as a table) and best.toml;
    returns the best row. When every trial failed, the reports are written and an EdgekitError raised."""
    from edgekit.pipeline.atomic import write_json_atomic, write_text_atomic

    best = best_row(rows)
    failed = [r for r in rows if r.get("status") == "failed"]
    write_json_atomic(out / "tune.json", {"schema": "edgekit.tune/1", "trial_epochs": epochs, "best": best,
                                          "ranges": {"temperature": T_RANGE, "alpha": ALPHA_RANGE},
                                          "failed": len(failed), "trials": rows})
    lines = ["# edgekit tune", "", f"{len(rows)} trials of {epochs} distillation epoch(s) each, scored on the "
             "validation split; Optuna TPE sampler (seeded)"
             + (f"; {len(failed)} failed (pruned), listed with their reason." if failed else "."), "",
             "| Trial | Method | T | alpha | Val accuracy % | Seconds |", "|---|---|---|---|---|---|"]
    for r in rows:
        mark = " **best**" if r is best else ""
        score = f"{100 * r['val_accuracy']:.2f}" if r.get("val_accuracy") is not None else f"failed: {r['reason']}"
        lines.append(f"| {r['trial'] + 1}{mark} | {r['method']} | {r['temperature']} | {r['alpha']} | "
                     f"{score.replace('|', '/')} | {r['seconds']} |")
    if best is not None:
        lines += ["", f"`edgekit compress --config {out / 'best.toml'}` trains with the best settings."]
    write_text_atomic(out / "tune.md", "\n".join(lines) + "\n")
    if best is None:
        reasons = sorted({r["reason"] for r in failed})
        raise EdgekitError(f"every one of the {len(rows)} trials failed ({'; '.join(reasons)[:300]})",
                           f"see {out / 'tune.md'}; narrow --methods or lower distill_lr in a --config file")
    write_text_atomic(out / "best.toml", best_config(settings, best))
    return best
