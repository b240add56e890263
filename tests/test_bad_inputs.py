"""Every bad input a user can give fails fast through the real CLI: exit 2, one ``error: what — fix`` line.

Each case runs the installed ``edgekit`` script as a subprocess and checks: exit code 2; stderr is exactly
one non-empty line, starting with ``error: `` and holding `` — ``; no traceback anywhere; and ``--out``
was not created (or, when it existed before, is unchanged), so nothing was trained.
"""

from __future__ import annotations

import json
import subprocess
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import pytest

from conftest import CliResult, make_image_folder, run_cli, write_png

# A case that does not fail fast would start training with the default settings; this stops it.
CASE_TIMEOUT_S = 180
TWO_CLASSES = {"train": ["cat", "dog"], "test": ["cat", "dog"]}


@dataclass(frozen=True)
class Case:
    id: str
    build: Callable[[Path], list[str]]  # makes the case's files in a work folder, returns its CLI flags
    words: tuple[str, ...]  # what the error line must mention (case-insensitive)
    # "absent"; "file": --out is an existing file; "below-file": --out is a path inside an existing file;
    # "run": --out is an earlier run's folder
    out: str = "absent"
    command: str = "compress"
    takes_out: bool = True  # `predict` has no --out
    env: Callable[[Path], dict[str, str]] | None = None  # extra environment, built from the work folder


def _data_missing(w: Path) -> list[str]:
    return ["--data", str(w / "no_such_dir")]


def _data_empty(w: Path) -> list[str]:
    (w / "empty").mkdir()
    return ["--data", str(w / "empty")]


def _data_one_class(w: Path) -> list[str]:
    return ["--data", str(make_image_folder(w / "data", {"train": ["cat"], "test": ["cat"]}))]


def _data_no_train(w: Path) -> list[str]:
    return ["--data", str(make_image_folder(w / "data", {"test": ["cat", "dog"], "val": ["cat", "dog"]}))]


def _data_is_file(w: Path) -> list[str]:
    write_png(w / "one.png", 0)
    return ["--data", str(w / "one.png")]


def _data_no_test(w: Path) -> list[str]:
    return ["--data", str(make_image_folder(w / "data", {"train": ["cat", "dog"]}))]


def _data_broken_image(w: Path) -> list[str]:
    root = make_image_folder(w / "data", TWO_CLASSES)
    (root / "train" / "dog" / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n this is not a png")
    return ["--data", str(root)]


def _teacher_missing(w: Path) -> list[str]:
    return ["--teacher", str(w / "teacher.pt")]


def _random_bytes(name: str) -> Callable[[Path], list[str]]:
    def build(w: Path) -> list[str]:
        import numpy as np

        (w / name).write_bytes(np.random.default_rng(1).integers(0, 256, 4096, dtype=np.uint8).tobytes())
        return ["--teacher", str(w / name)]

    return build


def _teacher_unknown_suffix(w: Path) -> list[str]:
    (w / "teacher.h5").write_bytes(b"keras?")
    return ["--teacher", str(w / "teacher.h5")]


def _teacher_onnx_not_a_model(w: Path) -> list[str]:
    (w / "teacher.onnx").write_bytes(b"onnx?")
    return ["--teacher", str(w / "teacher.onnx")]


def _data_truncated_image(w: Path) -> list[str]:
    root = make_image_folder(w / "data", TWO_CLASSES)
    whole = (root / "train" / "dog" / "0.png").read_bytes()
    (root / "train" / "dog" / "cut.png").write_bytes(whole[:len(whole) // 2])
    return ["--data", str(root)]


def _detect_broken_image(w: Path) -> list[str]:
    flags = _yolo("0 0.5 0.5 0.5 0.5\n")(w)
    (w / "d" / "images" / "train" / "y.png").write_bytes(b"\x89PNG\r\n\x1a\n broken")
    return flags


def _resnet18_weights(w: Path, num_classes: int) -> Path:
    import torch
    import torchvision

    path = w / "resnet18.pt"
    torch.save(torchvision.models.resnet18(weights=None, num_classes=num_classes).state_dict(), path)
    return path


def _teacher_wrong_arch(w: Path) -> list[str]:
    return ["--teacher", str(_resnet18_weights(w, 10)), "--teacher-arch", "mobilenet_v2"]


def _teacher_wrong_classes(w: Path) -> list[str]:
    # right architecture, but 1000 ImageNet outputs where the built-in digits have 10 classes
    return ["--teacher", str(_resnet18_weights(w, 1000)), "--teacher-arch", "resnet18"]


def _teacher_state_dict_as_pt2(w: Path) -> list[str]:
    # a zip archive, but a torch.save state_dict rather than an ExportedProgram
    import torch

    torch.save({"w": torch.zeros(2)}, w / "teacher.pt2")
    return ["--teacher", str(w / "teacher.pt2")]


def _yolo(labels: str | None, names: str = "names: [a, b]\n", val: str = "images/val",
          extra: tuple[str, ...] = ()) -> Callable[[Path], list[str]]:
    """A one-image YOLO data set with the given label text (None: no label file) and YAML tail."""
    def build(w: Path) -> list[str]:
        for split in ("train", "val"):
            write_png(w / "d" / "images" / split / "x.png", 0, size=32)
        if labels is not None:
            (w / "d" / "labels" / "train").mkdir(parents=True)
            (w / "d" / "labels" / "train" / "x.txt").write_text(labels, encoding="utf-8")
        (w / "d" / "data.yaml").write_text(f"train: images/train\nval: {val}\n{names}", encoding="utf-8")
        return ["--task", "detect", "--data", str(w / "d" / "data.yaml"), *extra]

    return build


def _detect_teacher_resnet(w: Path) -> list[str]:
    return _yolo("0 0.5 0.5 0.5 0.5\n", extra=("--teacher", str(_resnet18_weights(w, 2))))(w)


def _coco_without_images(w: Path) -> list[str]:
    (w / "instances.json").write_text('{"images": [], "annotations": [], "categories": []}', encoding="utf-8")
    return ["--task", "detect", "--data", str(w / "instances.json")]


def _predict_not_an_image(w: Path) -> list[str]:
    (w / "model.tflite").write_bytes(b"TFL3")
    (w / "photo.jpg").write_text("not a picture", encoding="utf-8")
    return [str(w / "model.tflite"), str(w / "photo.jpg")]


def _predict_no_recipe(w: Path) -> list[str]:
    (w / "model.onnx").write_bytes(b"not onnx")
    write_png(w / "x.png", 0)
    return [str(w / "model.onnx"), str(w / "x.png")]


def _config(text: str) -> Callable[[Path], list[str]]:
    def build(w: Path) -> list[str]:
        (w / "edgekit.toml").write_text(text, encoding="utf-8")
        return ["--config", str(w / "edgekit.toml")]

    return build


def _flags(*flags: str) -> Callable[[Path], list[str]]:
    return lambda _w: list(flags)


def _config(text: str, *flags: str) -> Callable[[Path], list[str]]:
    def build(w: Path) -> list[str]:
        (w / "edgekit.toml").write_text(text, encoding="utf-8")
        return ["--config", str(w / "edgekit.toml"), *flags]

    return build


def _student_weights_of_another_width(w: Path) -> list[str]:
    """A MobileNetV2 x1.0 state dict given to the default x0.35 student."""
    from safetensors.torch import save_file
    from torchvision.models import mobilenet_v2

    save_file(mobilenet_v2(width_mult=1.0, num_classes=10).state_dict(), str(w / "student.safetensors"))
    return ["--student-weights", str(w / "student.safetensors")]


def _profile(text: str) -> Callable[[Path], list[str]]:
    def build(w: Path) -> list[str]:
        (w / "board.toml").write_text(text, encoding="utf-8")
        return ["--target", str(w / "board.toml")]

    return build


BOARD = """name = "board"
description = "a test board"
published = []
[cpu]
cores = 4
core = "Cortex-A53"
arch = "armv8-a"
clock_ghz = 1.2
isa = ["neon"]
[runtime]
name = "ai-edge-litert"
threads = 4
"""


def tiny_onnx(path: Path) -> Path:
    """A valid one-operator ONNX model (y = relu(x)), made without torch."""
    import onnx
    from onnx import TensorProto, helper

    graph = helper.make_graph([helper.make_node("Relu", ["x"], ["y"])], "tiny",
                              [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, 8, 8])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 3, 8, 8])])
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 21)]), str(path))
    return path


def _detect_onnx_teacher(out_shape: list[int]) -> Callable[[Path], list[str]]:
    """--task detect with an ONNX teacher whose one output has ``out_shape`` (read, never run)."""
    def build(w: Path) -> list[str]:
        import numpy as np
        import onnx
        from onnx import TensorProto, helper, numpy_helper

        value = numpy_helper.from_array(np.zeros(out_shape, np.float32), "c")
        graph = helper.make_graph([helper.make_node("Constant", [], ["y"], value=value)], "yolo",
                                  [helper.make_tensor_value_info("images", TensorProto.FLOAT, [1, 3, 64, 64])],
                                  [helper.make_tensor_value_info("y", TensorProto.FLOAT, out_shape)])
        onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), str(w / "teacher.onnx"))
        return ["--task", "detect", "--teacher", str(w / "teacher.onnx")]

    return build


def _model(*flags: str) -> Callable[[Path], list[str]]:
    def build(w: Path) -> list[str]:
        return [str(tiny_onnx(w / "tiny.onnx")), *flags]

    return build


def _not_a_pte(w: Path) -> list[str]:
    (w / "model.pte").write_bytes(b"\0\0\0\0ET12 but not a program" * 10)
    return [str(w / "model.pte")]


def _not_a_model(w: Path) -> list[str]:
    (w / "model.tflite").write_bytes(b"TFL3 but not really a flatbuffer model" * 10)
    return [str(w / "model.tflite")]


def _wrong_suffix(w: Path) -> list[str]:
    (w / "model.txt").write_text("hello\n", encoding="utf-8")
    return [str(w / "model.txt")]



def _inspect_not_a_run(w: Path) -> list[str]:
    (w / "photos").mkdir()
    return [str(w / "photos")]


def _fp32_only_run(w: Path) -> Path:
    export = w / "run" / "artifacts"
    export.mkdir(parents=True)
    record = {"status": "complete", "result": {"artifacts": [
        {"name": "model_fp32.onnx", "format": "onnx", "precision": "fp32", "status": "ok"},
        {"name": "model_int8.tflite", "format": "tflite", "precision": "int8", "status": "failed"}]}}
    (export / "stage.json").write_text(json.dumps(record), encoding="utf-8")
    return w / "run"


def _inspect_no_int8(w: Path) -> list[str]:
    return [str(_fp32_only_run(w))]


def _inspect_unknown_file(w: Path) -> list[str]:
    return [str(_fp32_only_run(w)), "--file", "model.tflite"]


def _inspect_no_images(w: Path) -> list[str]:
    return [str(_fp32_only_run(w)), "--images", "0"]


CASES = [
    Case("unknown-target", _flags("--target", "nosuchboard"), ("nosuchboard",)),
    Case("unknown-target-existing-run", _flags("--target", "nosuchboard"), ("nosuchboard",), out="run"),
    Case("data-missing", _data_missing, ("no_such_dir", "does not exist")),
    Case("data-empty-dir", _data_empty, ("train",)),
    Case("data-one-class", _data_one_class, ("one class",)),
    Case("data-without-train", _data_no_train, ("train",)),
    Case("data-is-a-file", _data_is_file, ("one.png",)),
    Case("data-without-test", _data_no_test, ("test",)),
    Case("data-broken-image", _data_broken_image, ("broken.png", "--skip-bad-images")),
    Case("data-truncated-image", _data_truncated_image, ("cut.png", "cannot read image")),
    Case("detect-broken-image", _detect_broken_image, ("y.png", "--skip-bad-images")),
    Case("teacher-onnx-not-a-model", _teacher_onnx_not_a_model, ("teacher.onnx", "not a readable onnx model")),
    Case("loss-not-finite", _config("teacher_lr = 1e30\n"), ("teacher", "loss became", "lower the learning rate"),
         command="teacher"),
    Case("latency-seconds-zero", _config("latency_seconds = 0\n"), ("latency_seconds", "positive number")),
    Case("force-stage-unknown", _flags("--force-stage", "distil"), ("distil", "did you mean 'distill'")),
    # distillation methods (issue 7)
    Case("method-unknown", _flags("--method", "kdd"), ("kdd", "did you mean 'kd'")),
    Case("method-is-a-quant-method", _flags("--method", "ptq"), ("ptq", "--quant-method ptq")),
    Case("two-teachers-without-ensemble", _flags("--teacher", "a.safetensors", "--teacher", "b.safetensors"),
         ("2 teachers", "ensemble")),
    Case("ensemble-of-one", _flags("--method", "ensemble", "--teacher", "a.pt"), ("at least 2 teachers",)),
    Case("feature-method-onnx-teacher", _flags("--method", "at", "--teacher", "t.onnx"), ("t.onnx", "logits only")),
    Case("tune-method-unknown", _flags("--methods", "kd,atx"), ("atx", "did you mean 'at'"), command="tune"),
    Case("layers-unpaired", _config('teacher_layers = ["layer1"]\n'), ("teacher_layers", "student_layers")),
    Case("teacher-missing", _teacher_missing, ("teacher.pt", "does not exist")),
    Case("teacher-random-bytes-pt", _random_bytes("teacher.pt"), ("teacher.pt", "not a checkpoint")),
    Case("teacher-random-bytes-safetensors", _random_bytes("teacher.safetensors"),
         ("teacher.safetensors", "not a checkpoint")),
    Case("teacher-random-bytes-pt2", _random_bytes("teacher.pt2"), ("teacher.pt2", "not a checkpoint")),
    Case("teacher-state-dict-as-pt2", _teacher_state_dict_as_pt2, ("teacher.pt2", "not a checkpoint")),
    Case("teacher-unknown-suffix", _teacher_unknown_suffix, ("suffix",)),
    Case("teacher-wrong-arch", _teacher_wrong_arch, ("resnet18.pt", "mobilenet_v2")),
    Case("teacher-wrong-classes", _teacher_wrong_classes, ("resnet18.pt",)),
    Case("teacher-arch-unknown", _flags("--teacher-arch", "resnet19"), ("resnet19",)),
    Case("out-is-a-file", _flags(), ("is an existing file",), out="file"),
    Case("out-below-a-file", _flags(), ("which is a file",), out="below-file"),
    Case("config-unknown-key", _config("epoch = 3\n"), ("epoch", "did you mean 'epochs'?")),
    Case("config-wrong-type", _config('epochs = "three"\n'), ("epochs", "wrong type")),
    Case("config-missing", lambda w: ["--config", str(w / "nope.toml")], ("nope.toml",)),
    Case("config-invalid-toml", _config("epochs = = 3\n"), ("toml",)),
    Case("epochs-zero", _flags("--epochs", "0"), ("at least 1",)),
    Case("width-negative", _flags("--width", "-1"), ("width",)),
    Case("epochs-not-a-number", _flags("--epochs", "abc"), ("abc",)),
    Case("width-nan", _flags("--width", "nan"), ("width",)),
    Case("temperature-inf", _flags("--temperature", "inf"), ("temperature",)),
    Case("seed-huge", _flags("--seed", "100000000000000000"), ("seed",)),
    Case("distill-before-teacher", _flags(), ("no finished 'teacher' stage",), command="distill"),
    Case("student-unknown", _flags("--student", "resnet18"), ("resnet18",)),
    # the target picks the student (issue 20)
    Case("student-misses-latency-budget", _flags("--budget", "latency_ms=1", "--student", "mobilenet_v2", "--width", "1.0",
                                                 "--size", "96"), ("mobilenet_v2 x1 @ 96 px", "latency_ms=1", "--student auto")),
    Case("no-candidate-fits-budget", _flags("--budget", "latency_ms=0.01"), ("no candidate", "closest", "latency_ms=0.01")),
    Case("candidates-unknown-student", _config('[[candidates]]\narch = "mobilenet_v9"\nwidths = [1.0]\n',
                                               "--budget", "latency_ms=5"), ("mobilenet_v9", "mobilenet_v2")),
    Case("candidates-unknown-key", _config('[[candidates]]\narch = "mobilenet_v2"\nwidth = [1.0]\n'), ("'width'", "widths")),
    Case("latency-margin-negative", _flags("--latency-margin", "-1"), ("latency-margin",)),
    # the accuracy goal's fallback (issue 21)
    Case("max-drop-negative", _flags("--max-drop", "-1"), ("--max-drop", "between 0 and 100")),
    Case("max-drop-over-100", _flags("--max-drop", "101"), ("--max-drop", "between 0 and 100")),
    Case("max-drop-without-test-split", _yolo("0 0.5 0.5 0.5 0.5\n", extra=("--max-drop", "1")),
         ("needs a labelled test split", "train, val")),
    Case("student-auto-with-student-weights", _flags("--student", "auto", "--student-weights", "w.safetensors"),
         ("--student-weights", "--student auto")),
    Case("student-weights-missing", _flags("--student-weights", "gone.safetensors"), ("gone.safetensors", "does not exist")),
    Case("student-weights-wrong-shapes", _student_weights_of_another_width, ("student.safetensors", "features.0.0.weight")),
    Case("pretrained-unknown-name", _flags("--pretrained", "IMAGENET9K"), ("IMAGENET9K", "IMAGENET1K_V1")),
    Case("pretrained-detector-file-missing", _flags("--task", "detect", "--pretrained", "DEFAULT"),
         ("mobilenet_v2", "torch hub cache", "mobilenet_v2-7ebf99e0.pth"),
         env=lambda w: {"EDGEKIT_OFFLINE": "1", "TORCH_HOME": str(w / "torch_home")}),
    Case("detect-size-not-a-stride-multiple", _flags("--task", "detect", "--size", "40"),
         ("--size 40", "multiple of 16", "--size 48")),
    Case("detect-onnx-teacher-unknown-layout", _detect_onnx_teacher([1, 7, 7]),
         ("teacher.onnx", "[1, 7, 7]", "no known YOLO layout", "[1, 4+C, N]")),
    Case("detect-yolo-teacher-class-count", _detect_onnx_teacher([1, 84, 84 * 4]),
         ("teacher.onnx", "predicts 80 classes", "the data has 3")),
    Case("student-weights-for-tiny-detector", _flags("--task", "detect", "--student-weights", "w.safetensors"),
         ("--student-weights", "--task detect")),
    # targets, budgets, devices and model files (issue 4)
    Case("profile-missing-key", _profile(BOARD.replace("cores = 4\n", "")), ("board.toml", "cpu.cores")),
    Case("profile-bad-toml", _profile(BOARD + "[budgets\n"), ("board.toml", "toml")),
    Case("profile-unknown-figure-model", _profile(BOARD.replace(
        "published = []", 'published = [{ model = "mobilenet_v9", precision = "fp32", threads = 4, ms = 10.0, '
        'source = "https://example.org" }]')), ("published[0].model", "mobilenet_v9")),
    Case("profile-bad-budget", _profile(BOARD + "[budgets]\nspeed = 3\n"), ("speed", "budgets are")),
    Case("threads-zero", _flags("--threads", "0"), ("threads",)),
    Case("budget-malformed", _flags("--budget", "latency_ms"), ("latency_ms", "key=value")),
    Case("budget-unknown-key", _flags("--budget", "latency=3"), ("'latency'", "did you mean 'latency_ms'")),
    Case("budget-not-a-number", _flags("--budget", "size_mb=abc"), ("size_mb", "number")),
    Case("budget-accuracy-above-one", _flags("--budget", "accuracy=95"), ("accuracy", "fraction")),
    Case("device-malformed", _flags("--device", "pi@board"), ("pi@board", "ssh://")),
    Case("device-unreachable", _flags("--device", "ssh://nobody@127.0.0.1:1"), ("127.0.0.1",)),
    Case("inspect-not-a-run", _inspect_not_a_run, ("photos", "not an edgekit run"), command="inspect", takes_out=False),
    Case("inspect-no-int8-files", _inspect_no_int8, ("no int8 .onnx or .tflite",), command="inspect", takes_out=False),
    Case("inspect-unknown-file", _inspect_unknown_file, ("model.tflite", "model_fp32.onnx"), command="inspect",
         takes_out=False),
    Case("inspect-no-images", _inspect_no_images, ("--images", "at least 1"), command="inspect", takes_out=False),
    Case("benchmark-not-a-model", _not_a_model, ("model.tflite", "not a readable"), command="benchmark"),
    Case("benchmark-not-a-pte", _not_a_pte, ("model.pte", "not a readable pte model"), command="benchmark"),
    Case("benchmark-wrong-suffix", _wrong_suffix, ("model.txt", ".tflite, .onnx or .pte"), command="benchmark"),
    Case("benchmark-missing-file", lambda w: [str(w / "gone.tflite")], ("gone.tflite", "does not exist"),
         command="benchmark"),
    Case("benchmark-accuracy-budget-on-a-file", _model("--budget", "accuracy=0.9"), ("accuracy", "run directory"),
         command="benchmark"),
    Case("benchmark-file-unknown-target", _model("--target", "rpi3"), ("rpi3", "did you mean"), command="benchmark"),
    Case("benchmark-file-device-unreachable", _model("--device", "ssh://nobody@127.0.0.1:1"), ("127.0.0.1",),
         command="benchmark"),
    Case("detect-label-class-out-of-range", _yolo("0 0.5 0.5 0.5 0.5\n5 0.5 0.5 0.1 0.1\n"), ("x.txt line 2", "class 5")),
    Case("detect-label-malformed", _yolo("0 0.5 0.5 0.5\n"), ("x.txt line 1", "malformed")),
    Case("detect-yaml-without-names", _yolo("0 0.5 0.5 0.5 0.5\n", names=""), ("names",)),
    Case("detect-missing-split-folder", _yolo("0 0.5 0.5 0.5 0.5\n", val="images/nope"), ("val folder",)),
    Case("detect-data-is-a-folder", lambda w: ["--task", "detect", "--data", str(w)], ("folder", "data.yaml")),
    Case("detect-coco-without-images", _coco_without_images, ("--images",)),
    Case("detect-task-unknown", _flags("--task", "segment"), ("segment",)),
    Case("detect-teacher-wrong-arch", _detect_teacher_resnet, ("resnet18.pt", "tiny_detector")),
    Case("detect-teacher-arch-unmatched", _flags("--task", "detect", "--teacher-arch", "retinanet_resnet50_fpn"),
         ("retinanet_resnet50_fpn", "fcos_resnet50_fpn")),
    Case("detect-fcos-without-weights", _flags("--task", "detect", "--teacher-arch", "fcos_resnet50_fpn"),
         ("fcos_resnet50_fpn", "--teacher")),
    Case("predict-missing-model", lambda w: [str(w / "gone.tflite"), str(w / "x.png")], ("gone.tflite", "does not exist"),
         command="predict", takes_out=False),
    Case("predict-not-an-image", _predict_not_an_image, ("photo.jpg", "decoded"), command="predict", takes_out=False),
    Case("predict-model-without-recipe", _predict_no_recipe, ("model.onnx", "preprocess.json"), command="predict",
         takes_out=False),
]


def snapshot(path: Path) -> dict[str, bytes] | bytes | None:
    if not path.exists():
        return None
    if path.is_file():
        return path.read_bytes()
    return {p.relative_to(path).as_posix(): (p.read_bytes() if p.is_file() else b"<dir>") for p in path.rglob("*")}


def _prepare_out(out: Path, kind: str) -> None:
    if kind in ("file", "below-file"):
        out.write_text("an existing file, not a run folder\n", encoding="utf-8")
    elif kind == "run":
        (out / "teacher").mkdir(parents=True)
        (out / "teacher" / "stage.json").write_text('{"status": "complete"}\n', encoding="utf-8")
        (out / "report.json").write_text("{}\n", encoding="utf-8")


@dataclass
class Outcome:
    case: Case
    out: Path
    before: object
    result: CliResult | None
    timed_out: bool


def _run_case(case: Case, work: Path) -> Outcome:
    out = work / "out"  # what must stay absent or unchanged
    out_arg = out / "run" if case.out == "below-file" else out
    args = [case.command, *case.build(work), *(["--out", str(out_arg)] if case.takes_out else [])]
    _prepare_out(out, case.out)
    before = snapshot(out)
    try:
        result = run_cli(args, cwd=work, timeout=CASE_TIMEOUT_S, env_extra=case.env(work) if case.env else None)
    except subprocess.TimeoutExpired:
        return Outcome(case, out, before, None, True)
    return Outcome(case, out, before, result, False)


@pytest.fixture(scope="module")
def outcomes(tmp_path_factory: pytest.TempPathFactory, edgekit_script: Path) -> dict[str, Outcome]:
    """All cases at once, two at a time (each one is mostly interpreter start-up and imports)."""
    works = {case.id: tmp_path_factory.mktemp(case.id) for case in CASES}
    with ThreadPoolExecutor(max_workers=2) as pool:
        futures = {case.id: pool.submit(_run_case, case, works[case.id]) for case in CASES}
        return {cid: future.result() for cid, future in futures.items()}


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_bad_input_fails_fast_with_one_line(case: Case, outcomes: dict[str, Outcome]) -> None:
    outcome = outcomes[case.id]
    assert not outcome.timed_out, f"{case.id}: still running after {CASE_TIMEOUT_S} s — it did not fail before training"
    result = outcome.result
    assert result is not None
    context = f"{case.id}: edgekit {' '.join(result.args)}\nstdout:\n{result.stdout}\nstderr:\n{result.stderr}"
    assert result.returncode == 2, context
    assert "Traceback" not in result.stderr and "Traceback" not in result.stdout, context
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, context
    line = lines[0]
    assert line.startswith("error: "), context
    assert " — " in line, context
    what, _, fix = line[len("error: "):].partition(" — ")
    assert what.strip() and fix.strip(), context
    for word in case.words:
        assert word.lower() in line.lower(), f"'{word}' missing from the message\n{context}"
    after = snapshot(outcome.out)
    if case.out == "absent":
        assert after is None, f"{case.id}: --out was created ({after})\n{context}"
    else:
        assert after == outcome.before, f"{case.id}: --out changed\n{context}"


def test_durations_are_recorded(outcomes: dict[str, Outcome]) -> None:
    """Not a timing assertion: it lists how long each case took (see -rA / -s), to spot slow ones."""
    for cid, outcome in sorted(outcomes.items()):
        if outcome.result is not None:
            print(f"{cid}: {outcome.result.seconds:.1f} s")
    assert set(outcomes) == {c.id for c in CASES}


@pytest.mark.parametrize("suffix", [".pt", ".safetensors", ".pt2"])
def test_random_bytes_are_never_a_crash(tmp_path: Path, suffix: str) -> None:
    """Arbitrary bytes in a teacher file give the one user error, never another exception or a warning.

    Seeds 288 and 299 once escaped from torch's safe unpickler as IndexError and KeyError, and some bytes
    made it warn about a "pickle protocol 245" on stderr.
    """
    import warnings

    import numpy as np

    from edgekit.errors import EdgekitError
    from edgekit.models.user_weights import load_exported, read_state_dict

    load = load_exported if suffix == ".pt2" else read_state_dict
    path = tmp_path / f"teacher{suffix}"
    for seed in range(300):
        rng = np.random.default_rng(seed)
        n = int(rng.integers(1, 5000))
        path.write_bytes(rng.integers(0, 256, n, dtype=np.uint8).tobytes())
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            with pytest.raises(EdgekitError, match="not a checkpoint"):
                load(path)
        assert not caught, f"seed {seed}: {[str(w.message) for w in caught]}"
