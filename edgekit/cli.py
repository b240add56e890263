"""The command line: one thin command per stage, ``compress`` for the whole chain, and ``targets``.

Every command takes the same options; each stage reads the ones it needs. ``--config FILE.toml``
holds the same keys (``teacher_arch = "resnet18"``); flags given on the command line win.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.console import Console
from rich.table import Table

from edgekit.cli_options import (
    Data, Task, Images, TeacherFile, TeacherArch, Student, Width, Size, Temperature, Alpha, Epochs, QuantMethod,
    Method, Io, MaxDrop, Nproc, TrainDevice, SoftLabels, Target, Threads, Budget, DeviceOpt, Seed, Out, Config, Force,
    ForceStage, Debug, SkipBad, LatencyMargin, Pretrained, StudentWeights, DryRun)
from edgekit.config import Settings, build_settings, load_config_file, recorded_settings
from edgekit.errors import EdgekitError, is_disk_full

# typer 0.29 vendors click; its usage errors are typer's own classes.
from typer._click.exceptions import NoArgsIsHelpError, UsageError  # noqa: E402

app = typer.Typer(add_completion=False, no_args_is_help=True, pretty_exceptions_enable=False,
                  help="Distil, quantize, export and benchmark a PyTorch classifier or detector for an edge device.")
OUT = Console() if sys.stdout.isatty() else Console(width=140)  # logs and CI: no squeezed tables
ERR = Console(stderr=True, soft_wrap=True) if sys.stderr.isatty() else Console(stderr=True, soft_wrap=True, width=160)
DEBUG = {"on": False}



def _stage_command(stages: list[str], doc: str):  # noqa: ANN202 - typer reads the signature
    def command(data: Data = None, task: Task = None, images: Images = None, teacher: TeacherFile = None, teacher_arch: TeacherArch = None,
                student: Student = None, width: Width = None, size: Size = None, latency_margin: LatencyMargin = None,
                pretrained: Pretrained = None, student_weights: StudentWeights = None, temperature: Temperature = None,
                alpha: Alpha = None, epochs: Epochs = None, method: Method = None, quant_method: QuantMethod = None, io: Io = None, max_drop: MaxDrop = None,
                soft_label_cache: SoftLabels = None, nproc: Nproc = None, train_device: TrainDevice = None, target: Target = None,
                threads: Threads = None, budget: Budget = None, device: DeviceOpt = None, seed: Seed = None, out: Out = Path("runs/default"), config: Config = None,
                force: Force = False, force_stage: ForceStage = None, skip_bad_images: SkipBad = False,
                dry_run: DryRun = False, debug: Debug = False) -> None:
        DEBUG["on"] = debug
        flags = {"data": str(data) if data else None, "task": task, "images": str(images) if images else None,
                 "teacher": str(teacher[0]) if teacher else None,
                 "extra_teachers": [str(t) for t in teacher[1:]] if teacher and len(teacher) > 1 else None,
                 "method": method, "soft_label_cache": soft_label_cache, "nproc": nproc, "train_device": train_device,
                 "teacher_arch": teacher_arch, "student": student, "width": width, "size": size,
                 "latency_margin": latency_margin, "pretrained": pretrained,
                 "student_weights": str(student_weights) if student_weights else None,
                 "temperature": temperature, "alpha": alpha, "epochs": epochs, "quant_method": quant_method, "io": io, "max_drop": max_drop,
                 "target": target, "threads": threads, "budget": budget or None, "device": device, "seed": seed,
                 "skip_bad_images": skip_bad_images or None}
        _run(stages, flags, out, config, force, force_stage=force_stage, dry_run=dry_run)

    command.__doc__ = doc
    return command


def _run(stages: list[str], flags: dict, out: Path, config: Path | None, force: bool,
         recorded: dict | None = None, force_stage: str | None = None, dry_run: bool = False) -> None:
    # Settings and the checks that need no torch come first: a typo answers in well under a second.
    file_values = {**(recorded or {}), **(load_config_file(config) if config else {})}
    settings = build_settings(file_values, flags)
    from edgekit.chain import forced_stages, quick_checks

    forced = forced_stages(stages, force, force_stage)
    quick_checks(settings, out, stages)
    if dry_run:
        from edgekit.chain import dry_run as plan
        from edgekit.stages.context import StageContext

        for line in plan(StageContext(settings=settings, out=out, console=ERR), stages, forced):
            OUT.print(line, markup=False, highlight=False, soft_wrap=True) if isinstance(line, str) else OUT.print(line)
        return
    from edgekit.pipeline.distributed import launched_as_one_of_several, process_group

    if settings.nproc > 1 and not launched_as_one_of_several():
        from edgekit.pipeline.launch import launch
        from edgekit.pipeline.run_lock import run_lock

        with run_lock(out):  # held for all the processes
            code = launch(settings.nproc, sys.argv[1:])
        if code:
            raise SystemExit(code)
        return
    with process_group() as world, _locked(out, world):
        _run_locked(stages, settings, out, forced)


@contextmanager
def _locked(out: Path, world) -> Iterator[None]:  # noqa: ANN001 - a distributed.World
    """The run lock: taken here, or by the --nproc launcher; of several processes, rank 0 takes it for all."""
    import os

    from edgekit.pipeline.distributed import from_main
    from edgekit.pipeline.launch import LOCK_HELD
    from edgekit.pipeline.run_lock import run_lock

    if os.environ.get(LOCK_HELD):
        yield
        return
    if not world.main:
        if not from_main(0):
            raise SystemExit(2)  # rank 0 could not take the lock and says why
        yield
        return
    with ExitStack() as stack:
        try:
            stack.enter_context(run_lock(out))
        except EdgekitError:
            from_main(0)
            raise
        from_main(1)
        yield


def _run_locked(stages: list[str], settings: Settings, out: Path, forced: set[str]) -> None:
    from edgekit.chain import run_chain

    from edgekit.stages.context import StageContext

    ctx = StageContext(settings=settings, out=out, console=ERR)
    records = run_chain(ctx, stages, forced)
    from edgekit.pipeline.distributed import world

    if not world().main:
        return
    if "benchmark" in stages:
        _print_summary(out)
        _exit_1_on(records["report"]["failures"] + records["report"]["failed_files"])
    elif "export" in records:
        from edgekit.export.guarded import failure_lines

        _exit_1_on(failure_lines(records["export"]["result"]["artifacts"], out))


def _exit_1_on(failures: list[str]) -> None:
    """Budgets that fail, and requested files that failed to export or load, exit 1 (a user error is 2): CI fails
    the pull request and says why, one line each, after the reports were written."""
    for line in failures:
        ERR.print(line, markup=False, highlight=False)
    if failures:
        raise SystemExit(1)


def _print_summary(out: Path) -> None:
    import json

    _print_table(json.loads((out / "report.json").read_text(encoding="utf-8")), out)


def _print_table(report: dict, out: Path) -> None:
    from edgekit.bench.report_md import artifact_header, artifact_rows, metric_cell, metric_name

    table = Table(title=f"edgekit — {report['target']['description']}")
    for column in artifact_header(report):
        table.add_column(column)
    for row in artifact_rows(report):
        table.add_row(*row)
    OUT.print(table)
    deploy = report.get("deploy") or {}
    OUT.print(f"deploy: {deploy['name']} — {deploy['why']}" if deploy.get("name") else f"deploy: {deploy.get('why')}",
              markup=False, highlight=False, soft_wrap=True)  # one line, however long the reasons
    check = (report.get("student_choice") or {}).get("after_training")
    if check:
        from edgekit.bench.choice_section import after_training_line

        OUT.print(after_training_line(check), markup=False, highlight=False, soft_wrap=True)
    if "teacher" in report:
        OUT.print(f"teacher {metric_name(report) if 'metric' in report else 'accuracy'} {metric_cell(report, report['teacher']['accuracy'])}", markup=False)
    OUT.print(f"reports in {out}/report.{{json,md,html}}", markup=False, highlight=False)
    if (out / "DEPLOY.md").is_file():
        OUT.print(f"code to paste for {deploy['name']}: {out}/DEPLOY.md", markup=False, highlight=False)


app.command("compress")(_stage_command(list(("teacher", "distill", "quantize", "export", "benchmark")),
                                       "Run the whole chain: teacher, distill, quantize, export, benchmark."))
app.command("teacher")(_stage_command(["teacher"], "Train a teacher on the data, or load yours, and measure it."))
app.command("distill")(_stage_command(["distill"], "Distil the teacher into a MobileNet student (--method: kd, dkd, fitnet, at, rkd, ensemble, progressive, self)."))
app.command("quantize")(_stage_command(["quantize"], "INT8 by teacher-guided QAT (default) or PTQ (--quant-method ptq). QAT learns by plain KD whatever --method says (the INT8 graph has no named layers for feature terms); the report names the loss."))
app.command("export")(_stage_command(["export"], "Write ONNX and TFLite, FP32 and INT8, with labels and preprocess.json."))


@app.command("tune")
def tune(data: Data = None, teacher: TeacherFile = None, teacher_arch: TeacherArch = None, student: Student = None,
         width: Width = None, size: Size = None, seed: Seed = None,
         trials: Annotated[int, typer.Option(help="How many settings to try.")] = 12,
         methods: Annotated[str, typer.Option(help="Comma-separated methods to choose from.")] = "kd,dkd,at,rkd,fitnet",
         trial_epochs: Annotated[Optional[int], typer.Option(help="Distillation epochs of each trial (default: a quarter of distill_epochs).")] = None,
         out: Annotated[Path, typer.Option(help="Tuning folder: the teacher, trials/, tune.json, tune.md, best.toml.")] = Path("runs/tune"),
         config: Config = None, debug: Debug = False) -> None:
    """Search T, alpha and the method (Optuna) on the validation split; write the best as a config file."""
    DEBUG["on"] = debug
    flags = {"data": str(data) if data else None, "teacher": str(teacher[0]) if teacher else None,
             "teacher_arch": teacher_arch, "student": student, "width": width, "size": size, "seed": seed}
    if teacher and len(teacher) > 1:
        raise EdgekitError("tune takes one --teacher", "tune with one teacher; ensembles are a method of compress")
    settings = build_settings(load_config_file(config) if config else {}, flags)
    if trials < 1:
        raise EdgekitError(f"--trials must be at least 1, got {trials}", "pass e.g. --trials 12")
    epochs = trial_epochs if trial_epochs is not None else max(1, settings.distill_epochs // 4)
    if epochs < 1:
        raise EdgekitError(f"--trial-epochs must be at least 1, got {epochs}", "pass e.g. --trial-epochs 5")
    from edgekit.tune import parse_methods

    choices = parse_methods(methods)
    from edgekit.tasks import get_task

    if not get_task(settings.task).tunable:
        raise EdgekitError(f"tune searches distillation methods, and --task {settings.task} has one", "leave --task out")
    from edgekit.chain import quick_checks
    from edgekit.pipeline.run_lock import run_lock

    quick_checks(settings, out, ["teacher", "distill"])
    with run_lock(out):
        from edgekit.tune import search, write_reports
        from edgekit.chain import run_chain
        from edgekit.stages.context import StageContext

        ctx = StageContext(settings=settings, out=out, console=ERR)
        run_chain(ctx, ["teacher"])
        rows = search(ctx, trials, choices, epochs)
        best = write_reports(out, settings, rows, epochs)
    OUT.print(f"best of {len(rows)} trials: {best['method']}, T {best['temperature']}, alpha {best['alpha']}, "
              f"val accuracy {best['val_accuracy']:.4f}", markup=False, highlight=False)
    OUT.print(f"`edgekit compress --config {out / 'best.toml'}` uses them; every trial in {out}/tune.md",
              markup=False, highlight=False)


@app.command("benchmark")
def benchmark(path: Annotated[Optional[Path], typer.Argument(help="A .tflite, .onnx or .pte file, or a run directory (default: --out).")] = None,
              target: Target = None, threads: Threads = None, budget: Budget = None, device: DeviceOpt = None,
              data: Data = None, size: Size = None,
              out: Annotated[Optional[Path], typer.Option(help="Where the reports go (default: the run directory; for a file, runs/benchmark-<name>).")] = None,
              config: Config = None, force: Force = False, debug: Debug = False) -> None:
    """Measure every artifact in its own runtime, estimate its latency on the target, check budgets."""
    DEBUG["on"] = debug
    flags = {"data": str(data) if data else None, "size": size, "target": target, "threads": threads,
             "budget": budget or None, "device": device}
    if path is not None and not path.is_dir():
        from edgekit.bench.single_file import benchmark_file, check_model_file

        check_model_file(path)
        settings = build_settings(load_config_file(config) if config else {}, flags)
        report_dir = out or Path("runs") / f"benchmark-{path.stem}"
        from edgekit.chain import check_out_dir

        check_out_dir(report_dir)
        report, failures = benchmark_file(path, settings.target, settings.threads, settings.budget, settings.device,
                                          report_dir, settings.latency_runs)
        _print_table(report, report_dir)
        _exit_1_on(failures)
        return
    run_dir = path or out or Path("runs/default")
    recorded = recorded_settings(run_dir)
    _run(["benchmark"], flags, run_dir, config, force, recorded)


@app.command("predict")
def predict(model: Annotated[Path, typer.Argument(help="A .tflite/.onnx/.pte artifact, or a run directory (its deploy pick).")],
            images: Annotated[list[Path], typer.Argument(help="Image files.")],
            json_out: Annotated[Optional[Path], typer.Option("--json", help="Write the results here (default: print them).")] = None,
            score: Annotated[Optional[float], typer.Option(help="Detection score threshold (default: preprocess.json's, 0.25).")] = None,
            iou: Annotated[Optional[float], typer.Option(help="Detection NMS IoU threshold (default: preprocess.json's, 0.5).")] = None,
            top: Annotated[int, typer.Option(help="Classification: how many classes to list.")] = 5,
            save_images: Annotated[Optional[Path], typer.Option(help="Also write copies of the images with the results drawn.")] = None,
            debug: Debug = False) -> None:
    """Run an artifact on images with the pre- and post-processing from its preprocess.json."""
    import json

    DEBUG["on"] = debug
    for name, value in (("--score", score), ("--iou", iou)):
        if value is not None and not 0.0 <= value <= 1.0:
            raise EdgekitError(f"{name} must lie in [0, 1], got {value}", f"pass e.g. {name} 0.25")
    if top < 1:
        raise EdgekitError(f"--top must be at least 1, got {top}", "pass e.g. --top 5")
    if json_out is not None and json_out.is_dir():
        raise EdgekitError(f"--json {json_out} is a folder", "pass a file path such as predictions.json")
    from edgekit.inference.predict import predict as run_predict

    path, recipe, results = run_predict(model, images, score, iou, top)
    text = json.dumps(results, indent=2)
    if json_out is None:
        print(text)
    else:
        from edgekit.pipeline.atomic import write_text_atomic

        json_out.parent.mkdir(parents=True, exist_ok=True)
        write_text_atomic(json_out, text + "\n")
        ERR.print(f"predict: {path.name} on {len(results)} image(s) -> {json_out}", markup=False, highlight=False)
    if save_images is not None:
        from edgekit.inference.draw import save_drawn

        written = save_drawn(results, recipe.classes, save_images)
        ERR.print(f"predict: {len(written)} drawn image(s) in {save_images}", markup=False, highlight=False)


@app.command("inspect")
def inspect(run_dir: Annotated[Path, typer.Argument(help="A run directory (the --out of compress).")],
            file: Annotated[Optional[str], typer.Option("--file", help="One file of the run, e.g. model_int8.tflite (default: every INT8 .onnx and .tflite).")] = None,
            images: Annotated[int, typer.Option("--images", help="How many test images (the first N of the test split).")] = 32,
            debug: Debug = False) -> None:
    """Per-layer INT8 error of a finished run: each layer's SQNR against the FP32 student and the PyTorch INT8
    graph in every file, and where the error enters. Writes nothing (the benchmark stage writes layers.json)."""
    DEBUG["on"] = debug
    if images < 1:
        raise EdgekitError(f"--images must be at least 1, got {images}", "pass e.g. --images 32")
    from edgekit.layers.inspect_run import layer_files, layer_table, where_lines

    files = layer_files(run_dir, file)
    settings = build_settings(recorded_settings(run_dir), {})
    from edgekit.layers.report import layer_report
    from edgekit.stages.context import StageContext

    ctx = StageContext(settings=settings, out=run_dir, console=ERR)
    report = layer_report(run_dir, ctx.task, ctx.eval_images()[:images], files)
    OUT.print(layer_table(report, files))
    for line in where_lines(report, files):
        OUT.print(line, markup=False, highlight=False, soft_wrap=True)
    ERR.print(f"inspect: {len(report['layers'])} layers, {len(files)} file(s), {report['images']} images in "
              f"{report['seconds']:.1f} s", markup=False, highlight=False)


@app.command("targets")
def targets(name: Annotated[Optional[str], typer.Argument(help="Show one profile in full, with its leave-one-out table.")] = None) -> None:
    """List the hardware target profiles, or show one with the published figures its estimate is fitted to."""
    from edgekit.estimate.target_profiles import load_target, target_names

    if name:
        _show_target(load_target(name))
        return
    table = Table(title="edgekit targets")
    for column in ("Name", "Device", "CPU", "Clock GHz", "ISA", "Runtime", "Threads", "Published figures"):
        table.add_column(column)
    for target_name in target_names():
        t = load_target(target_name)
        figures = "measured here" if t.get("measured") else str(len(t.get("published", [])))
        table.add_row(target_name, t["description"], f"{t['cpu']['cores']}x {t['cpu']['core']}", str(t["cpu"]["clock_ghz"]),
                      ", ".join(t["cpu"]["isa"]), t["runtime"]["name"], str(t["runtime"]["threads"]), figures)
    OUT.print(table)
    OUT.print("`edgekit targets NAME` shows a profile in full with the estimate's leave-one-out error.")


def _show_target(profile: dict) -> None:
    import json

    from edgekit.estimate.target_estimate import calibrate

    OUT.print_json(json.dumps({k: v for k, v in profile.items() if k != "published"}))
    cal = calibrate(profile)
    if cal is None:
        OUT.print("no estimate for this target: " + ("it is measured, not estimated" if profile.get("measured")
                                                      else "fewer than 3 published figures"), markup=False)
        return
    table = Table(title=f"{profile['name']}: published figures, estimated with that figure left out of the fit "
                        "and with every figure of that network left out")
    for column in ("Model", "Precision", "Threads", "Published ms", "Figure out ms", "Error", "Network out ms", "Error",
                   "Source"):
        table.add_column(column)
    for r in cal.rows():
        table.add_row(r["model"], r["precision"], str(r["threads"]), f"{r['published_ms']:g}", f"{r['estimate_ms']:.1f}",
                      f"{100 * r['error']:+.0f} %", f"{r['network_out_estimate_ms']:.1f}",
                      f"{100 * r['network_out_error']:+.0f} %", r["source"])
    OUT.print(table)
    OUT.print(f"{cal.method()}.", markup=False, highlight=False)


def _usage_message(exc: UsageError) -> str:
    """Click's message on one line, naming the value it could not parse (typer keeps it in the cause)."""
    message = exc.format_message()
    errors = getattr(exc.__cause__, "errors", None)  # a pydantic ValidationError for a malformed number
    if callable(errors):
        try:
            bad = errors()[0].get("input")
        except Exception:  # noqa: BLE001 - only decoration of the message is at stake
            bad = None
        if isinstance(bad, str):
            message = f"{message} (got {bad!r})"
    return " ".join(message.split())


def _one_line_warning(message: Warning | str, category: type[Warning], filename: str, lineno: int,
                      file: object = None, line: str | None = None) -> None:
    """Warnings (a clipped box, a skipped file) as one ``warning:`` line, not Python's two-line form."""
    print(f"warning: {' '.join(str(message).split())}", file=sys.stderr)


def main() -> None:
    import logging
    import warnings

    warnings.showwarning = _one_line_warning
    # torchao (imported by the quantizer and by ExecuTorch) registers an enum the way torch now deprecates, and
    # torch logs that on every import: a line about our dependencies, not about the user's run
    logging.getLogger("torch.utils._pytree").setLevel(logging.ERROR)
    try:
        app(standalone_mode=False)
    except EdgekitError as exc:
        if DEBUG["on"]:
            raise
        print(exc.one_line(), file=sys.stderr)
        sys.exit(exc.exit_code)
    except NoArgsIsHelpError:
        sys.exit(0)
    except UsageError as exc:
        command = exc.ctx.command_path if exc.ctx else "edgekit"
        print(f"error: {_usage_message(exc)} — see `{command} --help`", file=sys.stderr)
        sys.exit(2)
    except OSError as exc:
        if not is_disk_full(exc) or DEBUG["on"]:
            raise
        where = f" writing {exc.filename}" if exc.filename else ""
        print(f"error: out of disk space{where} — free some space and rerun the same command "
              "(finished stages and checkpoints are kept; the unfinished write was discarded)", file=sys.stderr)
        sys.exit(2)
    except typer.Abort:
        print("error: interrupted — rerun the same command to continue", file=sys.stderr)
        sys.exit(130)
