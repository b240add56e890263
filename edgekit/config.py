"""Every parameter of the chain, as one flat set of keys shared by flags and ``--config`` files.

The keys of the TOML file are exactly the long flag names with ``-`` written as ``_``; a flag given on
the command line wins over the file. Each stage reads only its own share of them, a dataclass listed in
``edgekit/stages/settings.py`` whose fields are the stage's fingerprint, so changing a benchmark option never
retrains a model.
"""

from __future__ import annotations

import dataclasses
import json
import difflib
import math
import tomllib
import types
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, Union, get_args, get_origin, get_type_hints

from edgekit.errors import EdgekitError
from edgekit.registry import STUDENTS, TASKS, get_task


# The teacher-term weight a method gets unless --alpha is given. DKD learns better with less cross-entropy
# than KD: on the CIFAR-10 methods budget alpha 0.9 moved dkd from 43.98 to 44.99 % while kd went from
# 45.18 to 44.79 % (benchmarks/results/dkd_sweep.md, seed 0, DKD's NCKD weight 1; see losses.DKD).
METHOD_ALPHA = {"dkd": 0.9}
DEFAULT_ALPHA = 0.7


def default_alpha(method: str) -> float:
    """``alpha`` when none is given: ``METHOD_ALPHA`` for a method of that name alone, else 0.7."""
    return METHOD_ALPHA.get(method, DEFAULT_ALPHA)


@dataclass
class Settings:
    task: str = "classify"  # or "detect"
    # data
    data: str | None = None  # None: built-in digits (scenes for detect); else an ImageFolder, data.yaml or COCO json
    images: str | None = None  # detect with COCO json: the image folder
    size: int = 32  # square input side the student (and teacher) see
    # Why the run's size is what it is when the task chose it from the data (detection without --size); set by
    # build_settings, never by a user (config files cannot hold it)
    size_reason: str = ""
    # Why the student's epochs are what they are when the task chose them from the data (set as size_reason is)
    distill_epochs_reason: str = ""
    seed: int = 0
    # x = (pixel / 255 - mean) / std. The default keeps x = pixel / 255 in [0, 1], so the INT8 input's
    # scale comes out 1/255 with zero point -128: an app feeds int8 = uint8 pixel - 128, exactly, with no
    # rounding ties (mean = std = 0.5 would put every pixel half-way between two int8 steps).
    mean: list[float] = field(default_factory=lambda: [0.0, 0.0, 0.0])
    std: list[float] = field(default_factory=lambda: [1.0, 1.0, 1.0])
    batch_size: int = 64
    hflip: bool = False  # random horizontal flips in training (photos: yes; digits and text: no)
    # teacher
    teacher: str | None = None  # weights file (.safetensors, .pt/.pth state_dict, .pt2, .onnx); None: train one
    extra_teachers: list[str] = field(default_factory=list)  # method ensemble: the 2nd, 3rd, ... teacher files
    teacher_weights: list[float] = field(default_factory=list)  # method ensemble: one weight per teacher (default equal)
    ensemble_size: int = 2  # method ensemble without teacher files: how many teachers to train (seeds seed, seed+1, ...)
    teacher_arch: str = "resnet18"  # any torchvision classification builder name
    teacher_epochs: int = 8
    teacher_lr: float = 0.05
    # distill
    student: str = "mobilenet_v2"  # or mobilenet_v3_small, mobilenet_v3_large; auto: chosen for the target (choose/)
    width: float = 0.35
    # --student auto (the default under a latency_ms budget): how much of the estimate's band the choice charges
    # (1: the estimate's upper end must fit the budget; 0: the estimate itself), and the candidates it chooses
    # from: ``[[candidates]]`` tables (arch, widths, sizes) replace the default set (choose/candidates.py)
    latency_margin: float = 1.0
    candidates: list[dict] = field(default_factory=list)
    # torchvision's weights API: DEFAULT (each network's best published weights) or a weights name such as
    # IMAGENET1K_V1, for the teacher the chain trains and for the student (models/pretrained.py)
    pretrained: str | None = None
    student_weights: str | None = None  # .safetensors or weights-only state dict that initialises the student
    temperature: float = 4.0
    alpha: float | None = None  # weight of the teacher terms; 1 - alpha weighs cross-entropy; None: METHOD_ALPHA
    method: str = "kd"  # distill/methods.py: kd, dkd, fitnet, at, rkd, ensemble, progressive, self; "+" combines
    teacher_layers: list[str] = field(default_factory=list)  # module paths feature methods read (default: stage ends)
    student_layers: list[str] = field(default_factory=list)  # the student's, paired with teacher_layers in order
    assistants: int = 1  # method progressive: teacher assistants between teacher and student
    generations: int = 2  # method self: student generations (the first learns from the labels)
    soft_label_cache: str = "auto"  # auto (<out>/.soft_labels), off, or a folder shared by runs
    soft_label_cache_mb: int = 4096  # a cache that would grow beyond this is not used (the teacher runs every step)
    distill_epochs: int = 20
    distill_lr: float = 0.05
    # quantize
    quant_method: str = "qat"  # qat (teacher-guided) or ptq
    qat_epochs: int = 3
    qat_lr: float = 0.005
    calibration_batches: int = 16
    calibration_images: int | None = None  # PTQ sample size; None: calibration_batches x batch_size
    # INT8 weights: full (-127..127) or reduced (7 bits, -63..63: onnxruntime's reduce_range, so that its
    # x86 U8S8 kernels without VNNI cannot saturate); auto is reduced when the target's CPU is x86
    weight_range: str = "auto"
    # export
    # INT8 .tflite input and output: uint8 (raw RGB pixels in, as apps and MediaPipe feed them) or int8 (TFLite
    # Micro); auto is uint8 whenever the recipe allows it (one mean and one std for all channels), int8 otherwise
    io: str = "auto"
    # INT8 files may score at most this many points below the FP32 student: layers are kept float until they do
    # (edgekit/widen/); an ``accuracy`` budget does the same with an absolute floor
    max_drop: float | None = None
    # benchmark
    target: str = "rpi4"
    threads: int | None = None  # host threads for latency; None: the target's, capped at this host's cores
    latency_runs: int = 100
    latency_seconds: float = 20.0  # host timing window for all artifacts together; up to 3x on a busy host (bench/latency.py)
    budget: list[str] = field(default_factory=list)  # "key=value" limits (bench/budgets.py); beat the target's
    device: str | None = None  # "local" or "ssh://user@host[:port]": also measure there
    nproc: int = 1  # training processes on this machine (DistributedDataParallel, gloo); torchrun sets its own
    train_device: str = "auto"  # auto: a GPU per process when there are enough, else the CPU; cpu; cuda (the QAT stage trains on the CPU)
    skip_bad_images: bool = False  # leave out image files that cannot be decoded (data/bad_images.py) instead of stopping

    def __post_init__(self) -> None:
        self.resolve_defaults()

    def resolve_defaults(self) -> None:
        """Settings whose default follows others: alpha from the method, io from the recipe, weight_range from
        the target. ``None``/``"auto"`` stands for "not given"."""
        if self.alpha is None:
            self.alpha = default_alpha(self.method)
        if self.io == "auto":
            self.io = raw_pixel_io_default(self.mean, self.std)
        if self.weight_range == "auto":
            self.weight_range = weight_range_default(self.target)

    def with_epochs(self, epochs: int) -> None:
        """``--epochs N`` sets every training stage's epoch count at once."""
        self.teacher_epochs = self.distill_epochs = self.qat_epochs = epochs


AUTO = "auto"  # --student auto: the student is chosen for the target's budgets before training

# Settings fields that build_settings derives and no source may give.
DERIVED = ("size_reason", "distill_epochs_reason")
# Keys the config file accepts besides Settings fields.
EXTRA_KEYS = ("epochs",)
_HINTS: dict[str, Any] = {**get_type_hints(Settings), "epochs": int}
METHOD_CHOICES = {"quant_method": ("qat", "ptq"), "io": ("auto", "uint8", "int8"), "weight_range": ("auto", "full", "reduced"), "student": (*STUDENTS, AUTO),
                  "task": tuple(TASKS)}


def method_strategy(method: str) -> str | None:
    from edgekit.distill.method_spec import parse_method

    return parse_method(method).strategy


def _nearest(key: str, choices: list[str]) -> str:
    match = difflib.get_close_matches(key, choices, n=1)
    return f"did you mean '{match[0]}'?" if match else f"valid keys: {', '.join(sorted(choices))}"


def _accepts(hint: Any, value: Any) -> bool:
    """Whether a TOML value fits a Settings field's type hint (bools are not numbers here)."""
    origin = get_origin(hint)
    if origin in (Union, types.UnionType):
        return any(_accepts(arg, value) for arg in get_args(hint))
    if hint is type(None):
        return value is None
    if origin is list:
        return isinstance(value, list) and all(_accepts(get_args(hint)[0], v) for v in value)
    if isinstance(value, bool):
        return hint is bool
    if hint is float:
        return isinstance(value, (int, float))
    return isinstance(value, hint)


def _type_name(hint: Any) -> str:
    names = {int: "an integer", float: "a number", str: "a string", bool: "true or false"}
    args = [a for a in get_args(hint) if a is not type(None)] or [hint]
    if get_origin(args[0]) is list:
        item = get_args(args[0])[0]
        return {str: "a list of strings", dict: "a list of tables ([[name]] in TOML)"}.get(item, "a list of numbers")
    return names.get(args[0], str(args[0]))


def _coerce(name: str, value: Any, source: str) -> Any:
    hint = _HINTS[name]
    if not _accepts(hint, value):
        raise EdgekitError(f"{source}: '{name}' = {value!r} has the wrong type", f"give {name} as {_type_name(hint)}")
    if get_origin(hint) is list:
        return [float(v) for v in value] if get_args(hint)[0] is float else list(value)
    return float(value) if hint is float else value


def load_config_file(path: Path) -> dict[str, Any]:
    """Read a flat TOML file of Settings keys; unknown keys and wrong types are user errors."""
    if not path.is_file():
        raise EdgekitError(f"config file {path} does not exist", "pass an existing TOML file to --config")
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise EdgekitError(f"config file {path} is not valid TOML ({exc})", "fix the syntax of the file") from None
    known = [f.name for f in fields(Settings) if f.name not in DERIVED] + list(EXTRA_KEYS)
    out: dict[str, Any] = {}
    for key, value in raw.items():
        name = key.replace("-", "_")
        if name not in known:
            raise EdgekitError(f"unknown key '{key}' in {path}", _nearest(name, known))
        out[name] = _coerce(name, value, str(path))
    return out


def raw_pixel_io_default(mean: list[float], std: list[float]) -> str:
    """``--io auto``: raw uint8 pixels in whenever one uint8 scale and zero point can apply the recipe, that is
    one mean and one std for all channels; int8 I/O otherwise (a per-channel recipe such as ImageNet's)."""
    return "uint8" if len(set(mean)) == 1 and len(set(std)) == 1 else "int8"


def weight_range_default(target: str) -> str:
    """``weight_range auto``: 7-bit weights when the target's CPU is x86, where onnxruntime's U8S8 kernels
    without VNNI add pairs of products in 16 bits and full-range weights can saturate them (onnxruntime's
    quantization guide: reduce_range on x86 without VNNI); full-range int8 on ARM, where no kernel saturates.
    An unknown target is named by the benchmark's own check, so it gets full range here."""
    from edgekit.estimate.target_profiles import load_target

    try:
        arch = str(load_target(target)["cpu"]["arch"]).lower()
    except Exception:  # noqa: BLE001 - validated, with its own message, where the target is used
        return "full"
    return "reduced" if arch.startswith(("x86", "amd64", "i686")) else "full"


def task_of_data(data: Any) -> str | None:
    """The task a data file names when --task is not given: a YOLO data.yaml or a COCO .json is detection."""
    if data is not None and Path(str(data)).suffix.lower() in (".yaml", ".yml", ".json"):
        return "detect"
    return None


def build_settings(file_values: dict[str, Any], flag_values: dict[str, Any]) -> Settings:
    """Defaults, then the config file, then the flags that were given (not None)."""
    settings = Settings()
    settings.alpha = None  # resolved from the method below when no source gives one
    settings.io = "auto"  # resolved from the recipe below when no source gives one
    settings.weight_range = "auto"  # resolved from the target below when no source gives one
    merged = {**file_values, **{k: v for k, v in flag_values.items() if v is not None}}
    task = merged.get("task", task_of_data(merged.get("data")) or settings.task)
    if "task" not in merged and task != settings.task:
        flag_values = {**flag_values, "task": task}
    if task in TASKS:  # an unknown task is named by validate()
        for key, value in get_task(task).defaults.items():
            setattr(settings, key, value)
    # Each source is applied whole before the next, so `--epochs` beats `distill_epochs` in the file,
    # and within one source the specific key beats `epochs`.
    for source in (file_values, {k: v for k, v in flag_values.items() if v is not None}):
        values = dict(source)
        epochs = values.pop("epochs", None)
        if epochs is not None:
            settings.with_epochs(epochs)
        for key, value in values.items():
            setattr(settings, key, value)
    settings.resolve_defaults()
    given = {**file_values, **{k: v for k, v in flag_values.items() if v is not None}}
    if "size" not in given and task in TASKS:
        chosen = get_task(task).size_from_data(settings)
        if chosen is not None:
            settings.size, settings.size_reason = chosen
    if not {"distill_epochs", "epochs"} & set(given) and task in TASKS:
        epochs = get_task(task).distill_epochs_from_data(settings)
        if epochs is not None:
            settings.distill_epochs, settings.distill_epochs_reason = epochs
    validate(settings)
    _choose_student_when_budgeted(settings, given)
    return settings


def latency_budget(settings: Settings) -> float | None:
    """The run's latency_ms budget from the target's [budgets], the config and --budget (None: no such budget,
    or a target that does not load: the benchmark's own check names it)."""
    return run_budgets(settings).get("latency_ms")


def run_budgets(settings: Settings) -> dict[str, float]:
    from edgekit.bench.budgets import merge_budgets
    from edgekit.estimate.target_profiles import load_target

    try:
        profile = load_target(settings.target)
    except EdgekitError:
        return {}
    return merge_budgets(profile, settings.budget)


def _choose_student_when_budgeted(settings: Settings, given: dict[str, Any]) -> None:
    """``--student auto`` is the default whenever a latency_ms budget is set (flag, config or target) and no
    student, width or size is given; with an explicit ``--student auto``, a given width or size narrows the
    candidates to it. Detection chooses TinyDetector's width at the run's input size."""
    pinned = [k for k in ("student", "width", "size", "student_weights") if k in given]
    if settings.student == AUTO and settings.student_weights:
        raise EdgekitError("--student-weights fits one architecture, and --student auto may choose another",
                           "give --student, --width and --size with --student-weights")
    if settings.student != AUTO and (pinned or latency_budget(settings) is None):
        return
    if settings.student == AUTO and not settings.candidates and {"width", "size"} & set(given):
        from edgekit.registry import DETECTOR_CANDIDATES, STUDENT_CANDIDATES

        families = DETECTOR_CANDIDATES if settings.task == "detect" else STUDENT_CANDIDATES
        settings.candidates = [{"arch": arch, "widths": [settings.width] if "width" in given else list(widths),
                                **({"sizes": [settings.size]} if "size" in given else {})}
                               for arch, widths in families]
    settings.student = AUTO


def validate(s: Settings) -> None:
    """Range checks that no type can express."""
    for key in ("teacher_epochs", "distill_epochs", "qat_epochs"):
        if getattr(s, key) < 1:
            raise EdgekitError(f"{key.replace('_', ' ')} must be at least 1, got {getattr(s, key)}",
                               "pass --epochs 1 or more")
    if not (math.isfinite(s.width) and s.width > 0):
        raise EdgekitError(f"--width must be positive, got {s.width}", "pass a width multiplier such as 0.35 or 1.0")
    if not 0 <= s.seed < 2**32:  # torch's generators overflow on huge seeds (the loop seeds seed * 1000 + epoch)
        raise EdgekitError(f"--seed must lie in [0, 2**32), got {s.seed}", "pass a seed such as 0 or 42")
    if s.size < 16:
        raise EdgekitError(f"--size must be at least 16 pixels, got {s.size}", "pass --size 32 or larger")
    if s.batch_size < 1:
        raise EdgekitError(f"batch_size must be at least 1, got {s.batch_size}", "set batch_size to 1 or more")
    if not 0.0 <= s.alpha <= 1.0:  # also false for NaN
        raise EdgekitError(f"--alpha must lie in [0, 1], got {s.alpha}", "pass the weight of the soft term, e.g. 0.7")
    if not (math.isfinite(s.temperature) and s.temperature > 0):
        raise EdgekitError(f"--temperature must be positive, got {s.temperature}", "pass e.g. --temperature 4")
    for key in ("mean", "std"):
        if len(getattr(s, key)) != 3:
            raise EdgekitError(f"{key} must hold 3 numbers (R, G, B), got {getattr(s, key)}",
                               f"write e.g. {key} = {[0.0] * 3 if key == 'mean' else [1.0] * 3}")
    if not all(math.isfinite(v) and v > 0 for v in s.std):  # NaN and inf included
        raise EdgekitError(f"std must be positive, got {s.std}", "use e.g. std = [0.5, 0.5, 0.5]")
    if not all(math.isfinite(v) for v in s.mean):
        raise EdgekitError(f"mean must hold finite numbers, got {s.mean}", "use e.g. mean = [0.0, 0.0, 0.0]")
    if s.threads is not None and s.threads < 1:
        raise EdgekitError(f"--threads must be at least 1, got {s.threads}", "pass --threads 1 or more")
    for key in ("teacher_lr", "distill_lr", "qat_lr"):
        if not (math.isfinite(getattr(s, key)) and getattr(s, key) > 0):
            raise EdgekitError(f"{key} must be a positive number, got {getattr(s, key)}", f"set {key} to e.g. 0.05")
    if s.max_drop is not None and not (math.isfinite(s.max_drop) and 0 <= s.max_drop <= 100):
        raise EdgekitError(f"--max-drop must be between 0 and 100 points, got {s.max_drop:g}",
                           "pass how many points below the FP32 student an INT8 file may score, e.g. --max-drop 0.5")
    if not (math.isfinite(s.latency_margin) and s.latency_margin >= 0):
        raise EdgekitError(f"--latency-margin must be a number >= 0, got {s.latency_margin}",
                           "pass 1 to charge the estimate's whole band (default), 0 for none")
    if s.candidates:
        from edgekit.choose.candidates import candidates_from_config

        # an unknown student or a bad width is named before any work
        candidates_from_config(s.candidates, 32, ("tiny_detector",) if s.task == "detect" else STUDENTS)
    if s.pretrained is not None and not s.pretrained.strip():
        raise EdgekitError("--pretrained is empty", "pass DEFAULT or a torchvision weights name such as IMAGENET1K_V1")
    if s.calibration_images is not None and s.calibration_images < 1:
        raise EdgekitError(f"calibration_images must be at least 1, got {s.calibration_images}",
                           "set calibration_images to 1 or more, or leave it out (calibration_batches x batch_size)")
    if s.calibration_batches < 1:
        raise EdgekitError(f"calibration_batches must be at least 1, got {s.calibration_batches}",
                           "set calibration_batches to 1 or more")
    if s.device is not None:
        from edgekit.device.address import parse_device

        parse_device(s.device)
    from edgekit.bench.budgets import parse_budget_flags

    parse_budget_flags(s.budget, "--budget" if s.budget else "config")
    if s.latency_runs < 1:
        raise EdgekitError(f"latency_runs must be at least 1, got {s.latency_runs}", "set latency_runs to 1 or more")
    if not (math.isfinite(s.latency_seconds) and s.latency_seconds > 0):
        raise EdgekitError(f"latency_seconds must be a positive number, got {s.latency_seconds}",
                           "set latency_seconds to e.g. 20")
    for key, least in (("ensemble_size", 2), ("assistants", 1), ("generations", 2), ("soft_label_cache_mb", 1)):
        if getattr(s, key) < least:
            raise EdgekitError(f"{key} must be at least {least}, got {getattr(s, key)}", f"set {key} to {least} or more")
    if any(not (math.isfinite(w) and w > 0) for w in s.teacher_weights):
        raise EdgekitError(f"teacher_weights must be positive numbers, got {s.teacher_weights}",
                           "give one positive weight per teacher, e.g. teacher_weights = [0.6, 0.4]")
    if len(s.teacher_layers) != len(s.student_layers):
        raise EdgekitError(f"{len(s.teacher_layers)} teacher_layers but {len(s.student_layers)} student_layers",
                           "name as many of each; they pair up in order")
    from edgekit.distill.method_spec import parse_method

    method = parse_method(s.method)  # an unknown method is named here, before any work
    strategy = method.strategy
    opaque = [f for f in ([s.teacher] if s.teacher else []) + list(s.extra_teachers) if Path(f).suffix in (".onnx", ".pt2")]
    if method.needs_features and (strategy == "ensemble" or opaque):
        what = "an ensemble" if strategy == "ensemble" else Path(opaque[0]).name
        raise EdgekitError(f"--method {s.method} reads the teacher's inner layers, and {what} gives logits only",
                           "use kd or dkd, or give one teacher as .safetensors or .pt with --teacher-arch")
    if s.extra_teachers and strategy != "ensemble":
        raise EdgekitError(f"{1 + len(s.extra_teachers)} teachers given for --method {s.method}",
                           "add ensemble to --method (e.g. --method ensemble) or pass one --teacher")
    if s.extra_teachers and not s.teacher:
        raise EdgekitError("extra_teachers without teacher", "set teacher to the first teacher file")
    if strategy == "ensemble":
        if s.teacher and not s.extra_teachers:
            raise EdgekitError("--method ensemble needs at least 2 teachers, got 1 --teacher",
                               "pass --teacher twice, or none to train ensemble_size teachers")
        count = 1 + len(s.extra_teachers) if s.teacher else s.ensemble_size
        if s.teacher_weights and len(s.teacher_weights) != count:
            raise EdgekitError(f"{len(s.teacher_weights)} teacher_weights for {count} teachers",
                               "give one weight per teacher, in the order of the --teacher flags")
    if s.train_device not in ("auto", "cpu", "cuda"):
        raise EdgekitError(f"unknown train_device '{s.train_device}'", "use auto (the default), cpu or cuda")
    if s.nproc < 1:
        raise EdgekitError(f"--nproc must be at least 1, got {s.nproc}", "pass --nproc 2 (or leave it out)")
    if strategy == "self" and s.teacher:
        raise EdgekitError("--method self learns from the student's own earlier generation, not from --teacher",
                           "drop --teacher, or pick another method")
    for key, choices in METHOD_CHOICES.items():
        if getattr(s, key) not in choices:
            raise EdgekitError(f"{key.replace('_', '-')} '{getattr(s, key)}' is not known",
                               f"choose one of {', '.join(choices)}")
    if s.io == "uint8":
        from edgekit.export.tflite_raw_pixels import raw_pixel_quantization

        raw_pixel_quantization(s.mean, s.std)  # the recipe must fit a uint8 input's scale and zero point
    get_task(s.task).validate(s)


def as_dict(settings: Settings) -> dict[str, Any]:
    return dataclasses.asdict(settings)


def recorded_settings(run_dir: Path) -> dict[str, Any]:
    """The settings a run was exported and benchmarked with, so `edgekit benchmark RUN_DIR` needs no --data/--size
    again and re-measures nothing unless an option changes (a config file and flags still win). Values a stage
    derives (the export stage's ``accuracy_budget``, from the budgets) are not settings and are left out."""
    names = {f.name for f in fields(Settings)}
    recorded: dict[str, Any] = {}
    for folder in ("artifacts", "benchmark"):
        try:
            params = json.loads((run_dir / folder / "stage.json").read_text(encoding="utf-8"))["params"]
        except (OSError, ValueError, KeyError, TypeError):
            continue
        recorded.update({k: v for k, v in params.items() if v is not None and k in names})
    return recorded
