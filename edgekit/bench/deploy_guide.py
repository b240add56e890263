"""DEPLOY.md: code to paste for the deploy pick, filled with the run's own file names, input and labels.

Four places a classifier goes: Android (Kotlin) and iOS (Swift) through MediaPipe Tasks' ``ImageClassifier``,
which reads the file's own metadata and labels; a Raspberry Pi or other board through ``ai-edge-litert``; a
server or desktop through ``onnxruntime``; for a ``.pte`` pick, ``executorch.runtime`` too. The Python snippets
are whole scripts (``python snippet.py image ...`` in the artifacts folder prints one ``path label`` line an
image); tests/test_deploy_guide.py and tests/test_pte_export.py run them on a run's files and compare their
answers with edgekit's own runners.
"""

from __future__ import annotations

from typing import Any

GUIDE_FILE = "DEPLOY.md"


def _feed_lines(entry: dict[str, Any], doc: dict[str, Any]) -> list[str]:
    """The lines that turn a resized RGB PIL ``image`` into ``x``, the tensor the file takes (batch of one)."""
    layout = entry["layout"]
    to_layout = "[None]" if layout == "NHWC" else ".transpose(2, 0, 1)[None]"
    if entry["input_dtype"] == "uint8":
        return [f"    x = np.asarray(image, np.uint8){to_layout}  # the raw pixels: the model normalizes inside"]
    lines = [f"    x = (np.asarray(image, np.float32) * {doc['scale']!r} - MEAN) / STD  # the recipe",
             f"    x = x{to_layout}.astype(np.float32)"]
    if entry["input_dtype"] == "int8":
        lines.append(f"    x = np.clip(np.round(x / {entry['input_scale']!r}) + {entry['input_zero_point']}, -128, 127)"
                     ".astype(np.int8)")
    return lines


def _setup(doc: dict[str, Any], model: str) -> list[str]:
    """The lines every script starts with after its imports: the file, its input size, recipe and labels."""
    height, width = doc["size"]
    return [f'MODEL, LABELS = "{model}", "{doc["labels"]}"  # from the run\'s artifacts/ folder',
            f"SIZE = ({width}, {height})  # width, height", f"MEAN, STD = {doc['mean']!r}, {doc['std']!r}",
            'labels = open(LABELS, encoding="utf-8").read().splitlines()']


IMPORTS = ["import sys", "", "import numpy as np", "from PIL import Image"]


def litert_script(model: str, entry: dict[str, Any], doc: dict[str, Any], threads: int) -> str:
    return "\n".join([
        "# pip install ai-edge-litert pillow numpy", *IMPORTS,
        "from ai_edge_litert.interpreter import Interpreter", "", *_setup(doc, model),
        f"interpreter = Interpreter(model_path=MODEL, num_threads={threads})",
        "interpreter.allocate_tensors()",
        "inp, out = interpreter.get_input_details()[0], interpreter.get_output_details()[0]",
        "for path in sys.argv[1:]:",
        f"    image = Image.open(path).convert(\"{doc['color']}\").resize(SIZE, Image.Resampling.BILINEAR)",
        *_feed_lines(entry, doc),
        "    interpreter.set_tensor(inp[\"index\"], x)",
        "    interpreter.invoke()",
        "    scores = interpreter.get_tensor(out[\"index\"])[0]",
        "    print(path, labels[int(np.argmax(scores))])", ""])


def onnx_script(model: str, entry: dict[str, Any], doc: dict[str, Any]) -> str:
    config = entry.get("session_config") or {}
    session = ["options = ort.SessionOptions()",
               *[f"options.add_session_config_entry({k!r}, {v!r})  # preprocess.json's session_config" for k, v in
                 config.items()],
               "session = ort.InferenceSession(MODEL, options)"] if config else ["session = ort.InferenceSession(MODEL)"]
    return "\n".join([
        "# pip install onnxruntime pillow numpy", *IMPORTS, "import onnxruntime as ort", "", *_setup(doc, model),
        *session,
        "name = session.get_inputs()[0].name",
        "for path in sys.argv[1:]:",
        f"    image = Image.open(path).convert(\"{doc['color']}\").resize(SIZE, Image.Resampling.BILINEAR)",
        *_feed_lines(entry, doc),
        "    scores = session.run(None, {name: x})[0][0]",
        "    print(path, labels[int(np.argmax(scores))])", ""])


def executorch_script(model: str, entry: dict[str, Any], doc: dict[str, Any]) -> str:
    return "\n".join([
        "# pip install executorch pillow numpy", *IMPORTS, "import torch", "from executorch.runtime import Runtime", "",
        *_setup(doc, model),
        f"method = Runtime.get().load_program(MODEL).load_method({entry['input']!r})  # one image a call",
        "for path in sys.argv[1:]:",
        f"    image = Image.open(path).convert(\"{doc['color']}\").resize(SIZE, Image.Resampling.BILINEAR)",
        *_feed_lines(entry, doc),
        "    # ExecuTorch reads the tensor's memory in C order, whatever its strides: hand it a contiguous copy",
        "    scores = method.execute([torch.from_numpy(np.ascontiguousarray(x))])[0][0].numpy()",
        "    print(path, labels[int(np.argmax(scores))])", ""])


def kotlin_snippet(model: str) -> str:
    return f"""// app/build.gradle.kts: implementation("com.google.mediapipe:tasks-vision:latest.release")
// copy {model} into app/src/main/assets/ (its labels and input format are inside the file)
import com.google.mediapipe.framework.image.BitmapImageBuilder
import com.google.mediapipe.tasks.core.BaseOptions
import com.google.mediapipe.tasks.vision.imageclassifier.ImageClassifier

val options = ImageClassifier.ImageClassifierOptions.builder()
    .setBaseOptions(BaseOptions.builder().setModelAssetPath("{model}").build())
    .setMaxResults(3)
    .build()
val classifier = ImageClassifier.createFromOptions(context, options)
val result = classifier.classify(BitmapImageBuilder(bitmap).build())  // any size: MediaPipe resizes
val top = result.classificationResult().classifications()[0].categories()[0]
Log.i("edgekit", "${{top.categoryName()}} ${{top.score()}}")
"""


def swift_snippet(model: str) -> str:
    stem, _, suffix = model.rpartition(".")
    return f"""// Podfile: pod 'MediaPipeTasksVision'; add {model} to the app target (its labels are inside the file)
import MediaPipeTasksVision

let options = ImageClassifierOptions()
options.baseOptions.modelAssetPath = Bundle.main.path(forResource: "{stem}", ofType: "{suffix}")!
options.maxResults = 3
let classifier = try ImageClassifier(options: options)
let result = try classifier.classify(image: try MPImage(uiImage: uiImage))  // any size: MediaPipe resizes
if let top = result.classificationResult.classifications.first?.categories.first {{
    print(top.categoryName ?? "", top.score)
}}
"""


def _counterpart(pick: str, suffix: str, artifacts: dict[str, Any]) -> str | None:
    """The file of the pick's precision in another format (the pick itself when it is one), else any of that format."""
    if pick.endswith(suffix):
        return pick
    wanted = pick[:pick.rfind(".")] + suffix
    return wanted if wanted in artifacts else next((n for n in artifacts if n.endswith(suffix)), None)


def deploy_snippets(report: dict[str, Any], doc: dict[str, Any]) -> dict[str, tuple[str, str, str]] | None:
    """``{platform: (title, language, code)}`` for the run's deploy pick; None when there is no pick, or the
    run is not a classifier (a detector's decoding lives in preprocess.json and ``edgekit predict``)."""
    pick = (report.get("deploy") or {}).get("name")
    if not pick or report.get("settings", {}).get("task", "classify") != "classify":
        return None
    artifacts = doc["artifacts"]
    tflite, onnx = _counterpart(pick, ".tflite", artifacts), _counterpart(pick, ".onnx", artifacts)
    threads = int(report.get("target", {}).get("estimate_threads") or 4)
    snippets: dict[str, tuple[str, str, str]] = {}
    if tflite:
        snippets["android"] = (f"Android (Kotlin, MediaPipe Tasks), {tflite}", "kotlin", kotlin_snippet(tflite))
        snippets["ios"] = (f"iOS (Swift, MediaPipe Tasks), {tflite}", "swift", swift_snippet(tflite))
        snippets["litert"] = (f"Raspberry Pi and other boards (Python, ai-edge-litert), {tflite}", "python",
                              litert_script(tflite, artifacts[tflite], doc, threads))
    if onnx:
        snippets["onnxruntime"] = (f"Server or desktop (Python, onnxruntime), {onnx}", "python",
                                   onnx_script(onnx, artifacts[onnx], doc))
    if pick.endswith(".pte"):
        snippets["executorch"] = (f"ExecuTorch (Python, executorch.runtime), {pick}", "python",
                                  executorch_script(pick, artifacts[pick], doc))
    return snippets


def render_guide(report: dict[str, Any], snippets: dict[str, tuple[str, str, str]]) -> str:
    deploy = report["deploy"]
    classes = report.get("data", {}).get("classes", [])
    lines = [f"# Deploying {deploy['name']}", "",
             f"edgekit picked `{deploy['name']}`: {deploy['why']}. The files are in `artifacts/`; each snippet "
             f"names the one it opens. {len(classes)} classes, in `labels.txt` (and inside each .tflite).", ""]
    for title, language, code in snippets.values():
        lines += [f"## {title}", "", f"```{language}", code.rstrip("\n"), "```", ""]
    lines += ["The Python snippets are whole scripts: `python snippet.py photo.jpg ...` in the artifacts folder "
              "prints each image's label.", ""]
    return "\n".join(lines)
