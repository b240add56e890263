"""`edgekit compress --task detect` end to end at tiny size, and `edgekit predict` on its files and on a
classification run: the artifact contract, mAP per file in its own runtime, reports, and app-style output."""

from __future__ import annotations

import json
import shutil
from importlib import resources
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from conftest import make_yolo_scenes, run_cli

from edgekit.detect.scenes import CLASSES

FILES = ("model_fp32.onnx", "model_int8.onnx", "model_fp32.tflite", "model_int8.tflite", "model_fp32.pte",
         "model_int8.pte")
CONFIG = "latency_runs = 5\nlatency_seconds = 0.5\nbatch_size = 16\n"
MIN_MAP50 = 0.001  # the tiny fixture's level, with slack (measured 0.0035-0.0066)
MAP50_MARGIN = 0.003  # a file's mAP50 from its PyTorch model's (measured up to 0.0011)
PREDICT_SCORE = 0.01  # the fixture's best scores are about 0.019: nothing passes 0.05


@pytest.fixture(scope="module")
def detect_run(tmp_path_factory: pytest.TempPathFactory, edgekit_script: Path) -> Path:
    """The work folder; ``run/`` is a finished tiny detection compress (32 train images, 48 px, 1 epoch)."""
    work = tmp_path_factory.mktemp("detect")
    yaml = make_yolo_scenes(work / "data", {"train": 32, "val": 8, "test": 8})
    (work / "edgekit.toml").write_text(CONFIG, encoding="utf-8")
    args = ["compress", "--task", "detect", "--data", str(yaml), "--size", "48", "--epochs", "1", "--width", "0.25",
            "--config", str(work / "edgekit.toml"), "--out", str(work / "run")]
    result = run_cli(args, cwd=work, timeout=1200)
    if result.returncode != 0:
        pytest.fail(f"detection compress failed ({result.returncode})\nstdout:\n{result.stdout[-3000:]}\n"
                    f"stderr:\n{result.stderr[-5000:]}", pytrace=False)
    (work / "args.json").write_text(json.dumps(args), encoding="utf-8")
    return work


def _schema_errors(report: dict) -> list[str]:
    import jsonschema

    schema = json.loads(resources.files("edgekit.bench").joinpath("report.schema.json").read_text(encoding="utf-8"))
    return [e.message for e in jsonschema.Draft202012Validator(schema).iter_errors(report)]


def test_detection_run_writes_the_artifact_contract(detect_run: Path) -> None:
    run = detect_run / "run"
    for name in FILES:
        assert (run / "artifacts" / name).stat().st_size > 0, name
    assert (run / "artifacts" / "labels.txt").read_text(encoding="utf-8").split() == list(CLASSES)
    recipe = json.loads((run / "artifacts" / "preprocess.json").read_text(encoding="utf-8"))
    det = recipe["detection"]
    assert det["task"] == "detect" and det["strides"] == [8, 16] and det["outputs"] == ["scores", "boxes"]
    assert recipe["resize"] == "letterbox" and recipe["pad_value"] == 114  # images keep their aspect ratio
    assert "left (W - new_w) // 2, top (H - new_h) // 2" in recipe["letterbox"]  # where the image sits: centred
    assert set(recipe["artifacts"]) == set(FILES)
    assert recipe["artifacts"]["model_int8.tflite"]["input_dtype"] == "uint8"
    import onnx

    for name in ("model_fp32.onnx", "model_int8.onnx"):  # an ONNX file carries its recipe too, decoding included
        props = {p.key: p.value for p in onnx.load(str(run / "artifacts" / name)).metadata_props}
        embedded = json.loads(props["edgekit.preprocess"])
        assert embedded["artifact"] == name and embedded["classes"] == list(CLASSES)
        assert embedded["detection"]["outputs"] == ["scores", "boxes"] and list(embedded["outputs"]) == ["scores", "boxes"]
        assert embedded["resize"] == "letterbox"


def test_detection_tflite_carries_standard_metadata(detect_run: Path) -> None:
    from edgekit.export.tflite_metadata import associated_files, read_model_metadata

    artifacts = detect_run / "run" / "artifacts"
    recipe = json.loads((artifacts / "preprocess.json").read_text(encoding="utf-8"))
    for name in ("model_fp32.tflite", "model_int8.tflite"):
        meta = read_model_metadata(artifacts / name)
        assert meta is not None and meta.name == b"edgekit object detector", name
        (graph,) = meta.subgraphMetadata
        entry = recipe["artifacts"][name]["outputs"]
        in_file_order = sorted(entry, key=lambda n: entry[n]["index"])  # the metadata follows the file's outputs
        assert [o.name.decode() for o in graph.outputTensorMetadata] == in_file_order
        scores = graph.outputTensorMetadata[in_file_order.index("scores")]
        assert scores.associatedFiles[0].name == b"labels.txt"
        assert associated_files(artifacts / name)["labels.txt"].decode().split() == list(CLASSES)
        # the int8 file takes raw pixels; its float scores output stays float, the boxes become uint8
        if name == "model_int8.tflite":
            assert recipe["artifacts"][name]["outputs"]["scores"]["dtype"] == "float32"
            assert recipe["artifacts"][name]["outputs"]["boxes"]["dtype"] == "uint8"


def test_detection_report_has_map_per_file_and_follows_the_schema(detect_run: Path) -> None:
    report = json.loads((detect_run / "run" / "report.json").read_text(encoding="utf-8"))
    assert _schema_errors(report) == []
    assert report["task"] == "detect" and report["metric"]["key"] == "map50"
    assert report["data"]["eval_split"] == "test", "metrics use the test split when the data has one"
    students = {s["name"]: s for s in report["students"]}
    counterpart = {"fp32": students["student_fp32"], "int8": students["student_int8_pytorch"]}
    for a in report["artifacts"]:
        assert a["status"] == "ok", a
        assert a["map50_95"] <= a["map50"] and a["accuracy"] == a["map50"]
        # 1 epoch on 32 scenes: an all but untrained detector (measured mAP50 0.0035-0.0066 per file); a file
        # whose boxes or scores come back wrong scores 0
        assert a["map50"] >= MIN_MAP50 and a["map50_95"] > 0, a["name"]
        # each file scores what its PyTorch model does (measured differences up to 0.0011)
        assert abs(a["map50"] - counterpart[a["precision"]]["map50"]) <= MAP50_MARGIN, (a["name"], a["map50"])
        # at the app's score threshold (0.25) neither this detector nor its files report anything, so their
        # detections agree exactly; a file that reports objects PyTorch does not scores below 1
        assert a["agreement"] == 1.0, (a["name"], a["agreement"])
        assert a["latency_ms"]["p50"] > 0
        # rpi4's cost model reads .tflite and .onnx operators: a .pte is measured on the host, not estimated
        assert (a["target_estimate"] is None) if a["format"] == "pte" else a["target_estimate"]["ms"] > 0, a["name"]
    markdown = (detect_run / "run" / "report.md").read_text(encoding="utf-8")
    assert "mAP50" in markdown and "mAP50-95" in markdown
    assert "mAP50" in (detect_run / "run" / "report.html").read_text(encoding="utf-8")


def test_detection_layers_are_found_in_every_file(detect_run: Path) -> None:
    """The per-layer report maps every quantized TinyDetector layer (backbone, neck, both heads) in each .onnx and
    .tflite by its module path; the float files equal their student layer by layer up to the first upsampling. At
    48 px the stride-32 map (2x2) is upsampled to 3x3, where LiteRT's nearest-neighbour resize picks other source
    pixels than PyTorch's: the FP32 .tflite's neck layers differ from the student (about 25-40 dB), a difference
    this report shows and the output-only parity check (scores within 5e-7) does not."""
    layers = json.loads((detect_run / "run" / "benchmark" / "layers.json").read_text(encoding="utf-8"))
    paths = [layer["layer"] for layer in layers["layers"]]
    assert {"cls.1", "box.1"} <= set(paths) and len(paths) > 20
    names = [f["name"] for f in layers["files"]]
    assert {"model_fp32.onnx", "model_int8.onnx", "model_fp32.tflite", "model_int8.tflite"} <= set(names)
    for entry in layers["files"]:
        assert [row["layer"] for row in entry["layers"]] == paths, entry["name"]
        if entry["precision"] == "fp32":
            before_upsampling = [row for row in entry["layers"] if row["layer"].startswith(("stage", "lateral"))]
            assert min(row["sqnr_fp32_db"] for row in before_upsampling) > 80, entry["name"]
        if entry["name"] == "model_fp32.onnx":
            assert min(row["sqnr_fp32_db"] for row in entry["layers"]) > 80
    report = json.loads((detect_run / "run" / "report.json").read_text(encoding="utf-8"))
    assert report["layers"]["source"] == "benchmark/layers.json"


def test_detection_rerun_is_up_to_date(detect_run: Path) -> None:
    args = json.loads((detect_run / "args.json").read_text(encoding="utf-8"))
    result = run_cli(args, cwd=detect_run, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    for stage in ("teacher", "distill", "quantize", "export", "benchmark"):
        assert f"{stage}: up to date" in result.stderr, result.stderr[-3000:]


def test_predict_on_a_detection_run_gives_boxes_in_original_pixels(detect_run: Path, tmp_path: Path) -> None:
    small = detect_run / "data" / "images" / "test" / "0.png"
    wide = tmp_path / "wide.png"
    Image.open(small).resize((160, 90)).save(wide)
    out = tmp_path / "pred.json"
    result = run_cli(["predict", str(detect_run / "run"), str(small), str(wide), "--json", str(out), "--score",
                      str(PREDICT_SCORE), "--save-images", str(tmp_path / "drawn")], cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    predictions = json.loads(out.read_text(encoding="utf-8"))
    assert [Path(p["image"]).name for p in predictions] == ["0.png", "wide.png"]
    for p, (w, h) in zip(predictions, ((64, 64), (160, 90))):
        found = p["detections"]
        assert 1 <= len(found) <= 100, f"{p['image']}: {len(found)} detections at score {PREDICT_SCORE}"
        scores = [d["score"] for d in found]
        assert scores == sorted(scores, reverse=True), "best first"
        for d in found:
            assert d["class"] in CLASSES and PREDICT_SCORE <= d["score"] <= 1.0, d
            x0, y0, x1, y1 = d["box"]
            assert 0 <= x0 <= x1 <= w and 0 <= y0 <= y1 <= h, (d, w, h)
        # boxes in the original image's pixels: the wide image's reach past the 64 px of the model's frame
    assert max(d["box"][2] for d in predictions[1]["detections"]) > 64
    assert len(list((tmp_path / "drawn").glob("*.png"))) == 2


def test_predict_reads_the_recipe_embedded_in_a_lone_tflite_file(detect_run: Path, tmp_path: Path) -> None:
    lone = tmp_path / "model_int8.tflite"
    shutil.copy(detect_run / "run" / "artifacts" / "model_int8.tflite", lone)
    image = detect_run / "data" / "images" / "test" / "1.png"
    beside = run_cli(["predict", str(detect_run / "run" / "artifacts" / "model_int8.tflite"), str(image)], cwd=tmp_path)
    alone = run_cli(["predict", str(lone), str(image)], cwd=tmp_path)
    assert beside.returncode == 0 and alone.returncode == 0, beside.stderr + alone.stderr
    strip = lambda text: [p["detections"] for p in json.loads(text)]  # noqa: E731
    assert strip(alone.stdout) == strip(beside.stdout)


def _app_input(image: Image.Image, recipe: dict, entry: dict) -> tuple[np.ndarray, float, int, int]:
    """What an app builds from preprocess.json's words alone (no edgekit code): the letterboxed input."""
    height, width = recipe["size"]
    r = min(height / image.height, width / image.width)
    new_w, new_h = round(image.width * r), round(image.height * r)
    left, top = (width - new_w) // 2, (height - new_h) // 2
    canvas = Image.new("RGB", (width, height), (recipe["pad_value"],) * 3)
    canvas.paste(image.convert("RGB").resize((new_w, new_h), Image.Resampling.BILINEAR), (left, top))
    pixels = np.asarray(canvas)
    if entry["input_dtype"] == "uint8":  # the recipe's input_feed: the pixel values as they are, NHWC
        return pixels[None], r, left, top
    x = (pixels * recipe["scale"] - np.array(recipe["mean"])) / np.array(recipe["std"])
    return x.transpose(2, 0, 1)[None].astype(np.float32), r, left, top


def _app_detections(scores: np.ndarray, boxes: np.ndarray, recipe: dict, score: float) -> list[tuple]:
    """The detection section's decoding, written from its words: grid per stride (row-major), ltrb in strides,
    one box per location of its best class, class-wise NMS. scores [C, A], boxes [4, A]."""
    import torch
    from torchvision.ops import batched_nms

    det, (height, width) = recipe["detection"], recipe["size"]
    centres = [((col + 0.5) * s, (row + 0.5) * s, s) for s in det["strides"]
               for row in range(height // s) for col in range(width // s)]
    cx, cy, stride = (np.array(v, np.float32) for v in zip(*centres))
    xyxy = np.stack([cx - boxes[0] * stride, cy - boxes[1] * stride, cx + boxes[2] * stride, cy + boxes[3] * stride], 1)
    best, label = scores.max(0), scores.argmax(0)
    keep = np.nonzero(best >= score)[0]
    kept = batched_nms(torch.from_numpy(xyxy[keep]), torch.from_numpy(best[keep]), torch.from_numpy(label[keep]),
                       det["iou_threshold"]).numpy()
    return [(int(label[keep[k]]), float(best[keep[k]]), xyxy[keep[k]]) for k in kept]


@pytest.mark.parametrize("name", ["model_int8.tflite", "model_fp32.onnx"])
def test_an_app_decoding_from_the_recipe_alone_finds_what_predict_finds(detect_run: Path, name: str,
                                                                        tmp_path: Path) -> None:
    """The LiteRT interpreter and a plain onnxruntime session, as an app opens the file, fed and decoded only
    from preprocess.json's words, give predict's detections (boxes in the original image's pixels)."""
    artifacts = detect_run / "run" / "artifacts"
    recipe = json.loads((artifacts / "preprocess.json").read_text(encoding="utf-8"))
    entry = recipe["artifacts"][name]
    image_path = tmp_path / "wide.png"
    Image.open(detect_run / "data" / "images" / "test" / "2.png").resize((100, 70)).save(image_path)
    image = Image.open(image_path)
    x, r, left, top = _app_input(image, recipe, entry)
    if name.endswith(".tflite"):
        from ai_edge_litert.interpreter import Interpreter

        interpreter = Interpreter(model_path=str(artifacts / name))
        interpreter.allocate_tensors()
        interpreter.set_tensor(interpreter.get_input_details()[0]["index"], x)
        interpreter.invoke()
        details = interpreter.get_output_details()
        raw = {}
        for out, spec in entry["outputs"].items():
            value = interpreter.get_tensor(details[spec["index"]]["index"]).astype(np.float32)
            raw[out] = (value - spec.get("zero_point", 0)) * spec.get("scale", 1.0) if "scale" in spec else value
    else:
        import onnxruntime as ort

        values = ort.InferenceSession(str(artifacts / name)).run(None, {entry["input"]: x})
        raw = {out: values[spec["index"]] for out, spec in entry["outputs"].items()}
    found = _app_detections(raw["scores"][0], raw["boxes"][0], recipe, PREDICT_SCORE)
    result = run_cli(["predict", str(artifacts / name), str(image_path), "--score", str(PREDICT_SCORE)], cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    predicted = json.loads(result.stdout)[0]["detections"]
    assert len(found) == len(predicted) > 0
    for (label, score, box), want in zip(found, predicted):
        back = (box - np.array([left, top, left, top])) / r
        back = np.clip(back, 0, [image.width, image.height, image.width, image.height])
        assert recipe_class(artifacts, label) == want["class"] and score == pytest.approx(want["score"], abs=1e-4)
        assert np.allclose(back, want["box"], atol=0.06), (back, want["box"])  # predict rounds to 0.1 px


def recipe_class(artifacts: Path, label: int) -> str:
    return (artifacts / "labels.txt").read_text(encoding="utf-8").split()[label]


def test_predict_on_a_classification_run(e2e_run: Path, tmp_path: Path) -> None:
    from conftest import write_png

    write_png(tmp_path / "x.png", 3, size=40)
    result = run_cli(["predict", str(e2e_run / "run"), str(tmp_path / "x.png"), "--top", "3"], cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    (only,) = json.loads(result.stdout)
    assert len(only["top"]) == 3
    scores = [t["score"] for t in only["top"]]
    assert scores == sorted(scores, reverse=True) and 0 < sum(scores) <= 1.0001


@pytest.mark.parametrize("task", ["classify", "detect"])
def test_predict_with_a_labels_file_that_does_not_match_the_model(task: str, e2e_run: Path, detect_run: Path,
                                                                  tmp_path: Path) -> None:
    """A labels.txt edited to the wrong count: one line naming both counts, exit 2, nothing printed as a result."""
    import shutil

    from conftest import write_png

    source = (e2e_run / "run" if task == "classify" else detect_run / "run") / "artifacts"
    artifacts = Path(shutil.copytree(source, tmp_path / "artifacts"))
    names = (artifacts / "labels.txt").read_text(encoding="utf-8").splitlines()
    (artifacts / "labels.txt").write_text("".join(f"{n}\n" for n in names[:-1]), encoding="utf-8")
    write_png(tmp_path / "x.png", 3, size=40)
    for name in ("model_int8.tflite", "model_fp32.onnx"):
        result = run_cli(["predict", str(artifacts / name), str(tmp_path / "x.png")], cwd=tmp_path)
        assert result.returncode == 2 and result.stdout == "", result.stderr
        [line] = [ln for ln in result.stderr.splitlines() if ln.strip()]
        assert line.startswith("error: ") and "Traceback" not in result.stderr
        assert f"{len(names) - 1} class names" in line and f"scores {len(names)} classes" in line and "labels.txt" in line


def test_torchvision_fcos_teacher_from_a_weights_file(detect_run: Path, tmp_path: Path) -> None:
    """A torchvision FCOS state dict teaches the TinyDetector: teacher and distill stages run, and the
    distillation terms (score, box, feature imitation through 1x1 adapters to FCOS's 256 channels) are logged."""
    import torch
    from torchvision.models.detection import fcos_resnet50_fpn

    weights = tmp_path / "fcos.pth"
    torch.manual_seed(0)
    torch.save(fcos_resnet50_fpn(weights=None, weights_backbone=None, num_classes=len(CLASSES)).state_dict(), weights)
    common = ["--task", "detect", "--data", str(detect_run / "data" / "data.yaml"), "--size", "48", "--epochs", "1",
              "--width", "0.25", "--config", str(detect_run / "edgekit.toml"), "--teacher", str(weights),
              "--teacher-arch", "fcos_resnet50_fpn", "--out", str(tmp_path / "run")]
    for command in ("teacher", "distill"):
        result = run_cli([command, *common], cwd=tmp_path, timeout=900)
        assert result.returncode == 0, result.stderr[-3000:]
    teacher = json.loads((tmp_path / "run" / "teacher" / "stage.json").read_text(encoding="utf-8"))["result"]
    assert teacher["arch"] == "torchvision fcos_resnet50_fpn" and teacher["source"].startswith("file ")
    history = json.loads((tmp_path / "run" / "distill" / "stage.json").read_text(encoding="utf-8"))["result"]["history"]
    assert {"score_kd", "box_imitation", "feature"} <= set(history[0])
