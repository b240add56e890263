"""A YOLO detector exported by Ultralytics (``yolo export format=onnx``) as a detection teacher.

Ultralytics is AGPL-3.0, so nothing here imports it, at run time or otherwise: the exported file runs in a plain
onnxruntime session (runtime/ort_session.py, the way an app opens it), and what Ultralytics does around the
network is done here after its documented behaviour:

- layout: YOLOv5 writes one output ``[batch, N, 5+C]`` (cx, cy, w, h in input pixels, objectness, C class
  scores, all after sigmoid; the score is objectness * class); YOLOv8/YOLO11 write ``[batch, 4+C, N]`` (cx, cy,
  w, h, C class scores after sigmoid). Which one a file is follows from which dimension is the long one
  (N = 8400 at 640 px), or, in a ``dynamic=True`` export, from which one is symbolic (N is, the channels never).
- metadata: read from the graph's protobuf only (``onnx.load(load_external_data=False)``): no pickle, nothing
  executed; the ``names`` dict literal Ultralytics writes is parsed with ``ast.literal_eval``, never ``eval``.
- letterbox: Ultralytics' LetterBox (scale to fit, centred, grey 114 border, bilinear), then RGB / 255;
  predictions are mapped back by subtracting the border and dividing by the scale, as its ``scale_boxes``
  (data/preprocess.unletterbox_boxes).
- ``to_student_grid``: one image's predictions (before NMS) as per-cell targets on TinyDetector's grid.

Files exported with NMS or end to end (``nms=True``; YOLOv10/YOLO26) output final detections ``[1, 300, 6]``,
which would read as a one-class YOLOv5: their metadata is checked and they are refused with the fix.
"""

from __future__ import annotations

import ast
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from edgekit.data.preprocess import letterbox_boxes, letterbox_fit, unletterbox_boxes
from edgekit.detect.assign import SCALE_RANGES, near_centres
from edgekit.detect.tiny_detector import STRIDES, grid
from edgekit.errors import EdgekitError
from edgekit.models.onnx_teacher import check_external_data
from edgekit.runtime.ort_session import open_session

Dim = int | str | None  # a static size, a symbolic name, or unknown
PAD_VALUE = 114          # Ultralytics' letterbox grey, on the 0-255 scale
FLOOR = 1e-4             # score of "nothing here" in the student targets (and the clamp of every score)
PREFILTER = 1e-3         # predictions whose best class score is below this teach nothing and are dropped first
CELL_CHUNK = 1024        # cells matched against all predictions at once (bounds memory at K ~ 8400)
LAYOUT_FIX = ("pass a YOLO detector as `yolo export format=onnx` writes it: one output [1, N, 5+C] (YOLOv5) "
              "or [1, 4+C, N] (YOLOv8/11), C >= 1 classes")
EXPORT_FIX = "re-export it with `yolo export format=onnx`"


@dataclass(frozen=True)
class YoloSpec:
    """What read_yolo_spec learnt from the file: how to feed it and how to read its one detection output."""

    layout: str                       # "v5" ([batch, N, 5+C]) or "v8" ([batch, 4+C, N], also YOLO11)
    input_size: tuple[int, int]       # (height, width) the network takes
    num_classes: int
    names: list[str] | None = None    # from the metadata, when the file has it
    stride: int = 32                  # the largest stride
    input_name: str = "images"
    output_name: str = "output0"
    batch: int | None = None          # the input's fixed batch size; None when symbolic


# ---------------------------------------------------------------------------------------------- reading the file

def _unreadable(path: Path, exc: Exception) -> EdgekitError:
    return EdgekitError(f"teacher {path} is not a readable ONNX file ({type(exc).__name__})",
                        "pass the .onnx that `yolo export format=onnx` wrote")


def _dims(value: Any) -> list[Dim]:
    return [d.dim_value if d.HasField("dim_value") else (d.dim_param or None)
            for d in value.type.tensor_type.shape.dim]


def _shape_text(dims: list[Dim]) -> str:
    return "[" + ", ".join("?" if d is None else str(d) for d in dims) + "]"


def _layout_of(dims: list[Dim]) -> tuple[str, int] | str:
    """(layout, classes) of one output, or why it is no YOLO layout."""
    if len(dims) != 3:
        return f"rank {len(dims)}, not 3"
    a, b = dims[1], dims[2]
    if isinstance(a, int) and isinstance(b, int):
        if a == b:
            return "dimensions 1 and 2 are equal"
        layout, channels = ("v8", a) if a < b else ("v5", b)
    elif isinstance(a, int):
        layout, channels = "v8", a       # a dynamic=True YOLOv8 export: [batch, 4+C, anchors]
    elif isinstance(b, int):
        layout, channels = "v5", b       # a dynamic YOLOv5 export: [batch, anchors, 5+C]
    else:
        return f"dimensions 1 and 2 are both symbolic ({a or '?'}, {b or '?'})"
    classes = channels - (4 if layout == "v8" else 5)
    if classes < 1:
        return f"{channels} channels, too few for {'4+C' if layout == 'v8' else '5+C'}"
    return layout, classes


def _pick_output(outputs: list[Any], name: str) -> tuple[Any, str, int]:
    """The first output with a YOLO layout (Ultralytics writes the detections first, as output0)."""
    reasons = []
    for out in outputs:
        found = _layout_of(_dims(out))
        if not isinstance(found, str):
            return out, *found
        reasons.append(found)
    seen = ", ".join(f"{_shape_text(_dims(o))} ({o.name})" for o in outputs) or "nothing"
    why = f" ({reasons[0]})" if len(reasons) == 1 else ""
    raise EdgekitError(f"teacher {name} outputs {seen}: no known YOLO layout{why}", LAYOUT_FIX)


def _literal(meta: dict[str, str], key: str, name: str) -> Any:
    try:
        return ast.literal_eval(meta[key])
    except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError):
        raise EdgekitError(f"teacher {name}: metadata '{key}' is not a Python literal ({meta[key][:60]!r})",
                           EXPORT_FIX) from None


def _names(raw: Any, name: str) -> list[str]:
    if isinstance(raw, dict) and all(isinstance(k, int) for k in raw) and sorted(raw) == list(range(len(raw))):
        return [str(raw[k]) for k in range(len(raw))]
    if isinstance(raw, (list, tuple)) and all(isinstance(n, str) for n in raw):
        return list(raw)
    raise EdgekitError(f"teacher {name}: metadata 'names' is neither {{0: name, ...}} nor a list of names",
                       EXPORT_FIX)


def _imgsz(raw: Any, name: str) -> tuple[int, int]:
    if isinstance(raw, int) and raw > 0:
        return raw, raw
    if isinstance(raw, (list, tuple)) and len(raw) == 2 and all(isinstance(v, int) and v > 0 for v in raw):
        return raw[0], raw[1]
    raise EdgekitError(f"teacher {name}: metadata 'imgsz' is {raw!r}, not [height, width]", EXPORT_FIX)


def _refuse_final_detections(meta: dict[str, str], layout: str, shape: str, name: str) -> None:
    """Ultralytics files with NMS or an end-to-end head output [1, 300, 6] boxes, which look like a YOLOv5."""
    args = meta.get("args", "")
    try:
        nms = bool(ast.literal_eval(args).get("nms")) if args else False
    except (ValueError, TypeError, SyntaxError, AttributeError, MemoryError, RecursionError):
        nms = False
    ultralytics = "task" in meta  # YOLOv5's own export writes only stride and names
    if nms or meta.get("end2end") == "True" or (ultralytics and layout == "v5"):
        raise EdgekitError(f"teacher {name} outputs {shape}: final detections (exported with NMS or end to end), "
                           "not per-anchor predictions",
                           "re-export it with `yolo export format=onnx nms=False end2end=False`")


def _input(graph: Any, name: str) -> tuple[Any, list[Dim]]:
    initializers = {i.name for i in graph.initializer}
    inputs = [i for i in graph.input if i.name not in initializers]
    dims = _dims(inputs[0]) if len(inputs) == 1 else []
    if len(dims) != 4 or (isinstance(dims[1], int) and dims[1] != 3):
        seen = ", ".join(f"{_shape_text(_dims(i))} ({i.name})" for i in inputs) or "nothing"
        raise EdgekitError(f"teacher {name} takes {seen}, not one image tensor [N, 3, H, W]",
                           "pass a YOLO detector as `yolo export format=onnx` writes it (input 'images')")
    return inputs[0], dims


def _input_size(dims: list[Dim], meta: dict[str, str], name: str) -> tuple[int, int]:
    """The input tensor's static height and width (what the session demands), else the metadata's imgsz."""
    h, w = dims[2], dims[3]
    if isinstance(h, int) and isinstance(w, int) and h > 0 and w > 0:
        return h, w
    if "imgsz" in meta:
        return _imgsz(_literal(meta, "imgsz", name), name)
    raise EdgekitError(f"teacher {name} takes images {_shape_text(dims)} of no fixed size and has no 'imgsz' "
                       "metadata", "re-export it with a fixed size: `yolo export format=onnx imgsz=640`")


def read_yolo_spec(path: Path | str) -> YoloSpec:
    """What a YOLO ONNX file takes and predicts, from its graph and metadata (nothing in it is run)."""
    import onnx

    path = Path(path)
    name = path.name
    if not path.is_file():
        raise EdgekitError(f"teacher {path} does not exist", "pass the .onnx that `yolo export format=onnx` wrote")
    try:
        model = onnx.load(str(path), load_external_data=False)
    except Exception as exc:  # noqa: BLE001 - onnx fails on bad bytes in many ways
        raise _unreadable(path, exc) from None
    check_external_data(model, path)  # before onnxruntime opens any file the model names
    meta = {p.key: p.value for p in model.metadata_props}
    if meta.get("task", "detect") != "detect":
        raise EdgekitError(f"teacher {name} is a YOLO '{meta['task']}' model, not a detector",
                           "pass a detection model (task=detect) exported with `yolo export format=onnx`")
    output, layout, classes = _pick_output(list(model.graph.output), name)
    _refuse_final_detections(meta, layout, _shape_text(_dims(output)), name)
    image, dims = _input(model.graph, name)
    names = _names(_literal(meta, "names", name), name) if "names" in meta else None
    if names is not None and len(names) != classes:
        raise EdgekitError(f"teacher {name} names {len(names)} classes in its metadata but its output "
                           f"{_shape_text(_dims(output))} has {classes}", EXPORT_FIX)
    stride = _literal(meta, "stride", name) if "stride" in meta else 32
    if not isinstance(stride, int) or stride <= 0:
        raise EdgekitError(f"teacher {name}: metadata 'stride' is {meta['stride']!r}, not a whole number",
                           EXPORT_FIX)
    return YoloSpec(layout, _input_size(dims, meta, name), classes, names, stride, image.name, output.name,
                    dims[0] if isinstance(dims[0], int) and dims[0] > 0 else None)


def check_classes(spec: YoloSpec, num_classes: int, path: Path | str, names: list[str] | None = None) -> None:
    """The teacher must score exactly the data's classes (``names``, when known, are shown): distillation matches
    them by index."""
    if spec.num_classes == num_classes:
        return
    shown = f" ({', '.join(names[:5])}{', ...' if len(names) > 5 else ''})" if names else ""
    raise EdgekitError(f"teacher {Path(path).name} predicts {spec.num_classes} classes, the data has "
                       f"{num_classes}{shown}", "train/export the YOLO model on this data set's classes")


# ------------------------------------------------------------------------------------------------ letterboxing

def letterbox_geometry(hw: tuple[int, int], new_shape: tuple[int, int]) -> tuple[float, tuple[int, int],
                                                                                 tuple[int, int, int, int]]:
    """Ultralytics' LetterBox arithmetic (the same as edgekit's own recipe, data/preprocess.letterbox_fit): scale r,
    unpadded (h, w), and the border (left, right, top, bottom)."""
    r, unpad_h, unpad_w, left, top = letterbox_fit(hw[0], hw[1], new_shape)
    return r, (unpad_h, unpad_w), (left, new_shape[1] - unpad_w - left, top, new_shape[0] - unpad_h - top)


def letterbox(images: np.ndarray, new_shape: tuple[int, int],
              color: int = PAD_VALUE) -> tuple[np.ndarray, float, tuple[int, int]]:
    """Images [N, H, W, 3] or one [H, W, 3] (RGB, uint8 or float on the 0-255 scale) as the teacher's input:
    NCHW float32 in [0, 1], the scale r and the border (pad_left, pad_top).

    As Ultralytics: scaled by r = min(new_h / h, new_w / w) with bilinear resizing (half-pixel centres, no
    antialiasing, as cv2's INTER_LINEAR; uint8 results rounded back to whole levels, as cv2 returns uint8), centred
    on a ``color`` border. torch does the resizing: cv2 is not one of edgekit's dependencies.
    """
    batch = np.asarray(images)
    if batch.ndim == 3:
        batch = batch[None]
    if batch.ndim != 4 or batch.shape[-1] != 3:
        raise ValueError(f"letterbox takes [N, H, W, 3] or [H, W, 3] images, not {list(batch.shape)}")
    r, (unpad_h, unpad_w), (left, right, top, bottom) = letterbox_geometry(batch.shape[1:3], new_shape)
    x = torch.from_numpy(np.ascontiguousarray(batch)).permute(0, 3, 1, 2).float()
    if (unpad_h, unpad_w) != tuple(batch.shape[1:3]):
        x = torch.nn.functional.interpolate(x, size=(unpad_h, unpad_w), mode="bilinear", align_corners=False)
        if batch.dtype == np.uint8:
            x = x.round().clamp(0, 255)
    x = torch.nn.functional.pad(x, (left, right, top, bottom), value=float(color))
    return (x / 255.0).numpy(), r, (left, top)


# --------------------------------------------------------------------------------------------------- the teacher

def decode_output(pred: np.ndarray, layout: str) -> tuple[np.ndarray, np.ndarray]:
    """One image's raw output ([N, 5+C] for v5, [4+C, N] for v8) as boxes xyxy [N, 4] in input pixels and class
    scores [N, C] (v5: objectness * class, Ultralytics' and YOLOv5's own score)."""
    rows = pred.T if layout == "v8" else pred
    cx, cy, w, h = (rows[:, i] for i in range(4))
    boxes = np.stack([cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2], 1)
    scores = rows[:, 4:] if layout == "v8" else rows[:, 5:] * rows[:, 4:5]
    return boxes.astype(np.float32), scores.astype(np.float32)


def _frames(images: np.ndarray | Sequence[np.ndarray]) -> list[np.ndarray]:
    if isinstance(images, np.ndarray):
        return [images] if images.ndim == 3 else list(images)
    return [np.asarray(i) for i in images]


class YoloOnnxTeacher:
    """An Ultralytics YOLO ONNX file run in a plain onnxruntime session on the CPU."""

    def __init__(self, path: Path | str, threads: int | None = None, batch_size: int = 8) -> None:
        self.path = Path(path)
        self.spec = read_yolo_spec(self.path)  # also refuses external data outside the model's folder
        try:
            self.session = open_session(self.path, threads)
        except Exception as exc:  # noqa: BLE001 - onnxruntime fails on bad models in many ways
            raise _unreadable(self.path, exc) from None
        kind = self.session.get_inputs()[0].type
        self._dtype = np.float16 if kind == "tensor(float16)" else np.float32  # a `half=True` export
        # A fixed batch (1, as `yolo export` writes by default) is fed exactly; a symbolic one in batch_size chunks.
        self._feed = self.spec.batch or batch_size

    def predict(self, images: np.ndarray | Sequence[np.ndarray]) -> list[tuple[np.ndarray, np.ndarray]]:
        """Per image (RGB [H, W, 3], uint8; a batch [N, H, W, 3] or a list of any sizes): boxes xyxy [K, 4] in
        the original image's pixels and class scores [K, C], every anchor's prediction, before NMS."""
        frames = _frames(images)
        results = []
        for start in range(0, len(frames), self._feed):
            chunk = frames[start:start + self._feed]
            boxed = [letterbox(f, self.spec.input_size) for f in chunk]
            x = np.concatenate([b[0] for b in boxed])
            if self.spec.batch and len(x) < self.spec.batch:  # a fixed batch: fill the last one
                x = np.concatenate([x, np.zeros((self.spec.batch - len(x), *x.shape[1:]), x.dtype)])
            out = self.session.run([self.spec.output_name], {self.spec.input_name: x.astype(self._dtype)})[0]
            for frame, pred in zip(chunk, out):
                boxes, scores = decode_output(pred.astype(np.float32), self.spec.layout)
                results.append((unletterbox_boxes(boxes, *frame.shape[:2], self.spec.input_size), scores))
        return results


# ------------------------------------------------------------------------------------------ the student's grid

def _to_student_pixels(boxes: torch.Tensor, image_hw: tuple[int, int], size: int, letterboxed: bool) -> torch.Tensor:
    h, w = image_hw
    if not letterboxed:
        return boxes * torch.tensor([size / w, size / h, size / w, size / h])
    return torch.from_numpy(letterbox_boxes(boxes.numpy(), h, w, (size, size)))


def _first_containing(boxes: torch.Tensor, centres: torch.Tensor, near: float | None = None) -> torch.Tensor:
    """Per centre, the index of the first box that contains it (strictly, as assign), -1 where none does; with
    ``near`` (pixels) only boxes whose centre is that close to the cell's on both axes count."""
    choice = torch.full((len(centres),), -1, dtype=torch.long)
    bx, by = (boxes[:, 0] + boxes[:, 2]) / 2, (boxes[:, 1] + boxes[:, 3]) / 2
    for start in range(0, len(centres), CELL_CHUNK):
        x, y = centres[start:start + CELL_CHUNK, 0:1], centres[start:start + CELL_CHUNK, 1:2]
        inside = (x > boxes[:, 0]) & (x < boxes[:, 2]) & (y > boxes[:, 1]) & (y < boxes[:, 3])
        if near is not None:
            inside &= near_centres(x, y, bx, by, near)
        hit, first = inside.to(torch.uint8).max(1)  # max returns the index of the first of equal maxima
        choice[start:start + CELL_CHUNK] = torch.where(hit > 0, first, -1)
    return choice


def _best_containing(boxes: torch.Tensor, centres: torch.Tensor, strides: torch.Tensor,
                     scale_ranges: bool, centre_radius: float | None = None) -> torch.Tensor:
    """Per cell, the index of the first box (boxes come sorted best first) that contains its centre and, with
    scale_ranges, whose longer side lies in the range of the cell's level; -1 where none does. Level by level,
    so that each level only tests the boxes of its sizes."""
    side = torch.maximum(boxes[:, 2] - boxes[:, 0], boxes[:, 3] - boxes[:, 1])
    choice = torch.full((len(centres),), -1, dtype=torch.long)
    for s in STRIDES:
        cells = torch.nonzero(strides == s).flatten()
        low, high = SCALE_RANGES[s]
        fits = torch.nonzero((side >= low) & (side <= high) if scale_ranges else side >= 0).flatten()
        if len(cells) and len(fits):
            near = None if centre_radius is None else centre_radius * s
            first = _first_containing(boxes[fits], centres[cells], near)
            choice[cells] = torch.where(first >= 0, fits[first.clamp(min=0)], -1)
    return choice


def to_student_grid(boxes_xyxy: torch.Tensor | np.ndarray, scores: torch.Tensor | np.ndarray,
                    image_hw: tuple[int, int], student_size: int, strides: tuple[int, ...] = STRIDES, *,
                    letterboxed: bool = False, scale_ranges: bool = True,
                    centre_radius: float | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """One image's teacher predictions (boxes xyxy [K, 4] in original pixels, scores [K, C], before NMS) as
    TinyDetector targets: class logits [A, C] and box distances ltrb [A, 4] (from the cell centre, in strides).

    The student sees the image stretched to ``student_size`` square (as detect data is resized), or with
    ``letterboxed`` letterboxed to it; the boxes go through the same transform. A cell, in ``grid``'s order,
    takes the best prediction (highest class score) whose box contains its centre; with ``scale_ranges`` (the
    default) only predictions whose longer side lies in the level's range of assign.SCALE_RANGES count, so the
    teacher teaches each level the object sizes the ground truth assigns to it. Cells without one get
    logit(1e-4) for every class and ltrb 0. Predictions whose best score is below 0.001 are dropped first.
    """
    if tuple(strides) != STRIDES:
        raise ValueError(f"TinyDetector predicts at strides {STRIDES}, not {tuple(strides)}")
    boxes = torch.as_tensor(boxes_xyxy, dtype=torch.float32).reshape(-1, 4)
    scores = torch.as_tensor(scores, dtype=torch.float32)
    scores = scores.reshape(len(boxes), scores.shape[-1])
    centres, cell_strides = grid(student_size)
    logits = torch.full((len(centres), scores.shape[1]), float(torch.logit(torch.tensor(FLOOR))))
    ltrb = torch.zeros(len(centres), 4)
    best = scores.max(1).values if scores.numel() else torch.zeros(len(boxes))
    keep = best >= PREFILTER
    if not keep.any():
        return logits, ltrb
    order = best[keep].argsort(descending=True, stable=True)
    boxes = _to_student_pixels(boxes[keep], image_hw, student_size, letterboxed)[order]
    scores = scores[keep][order]
    choice = _best_containing(boxes, centres, cell_strides, scale_ranges, centre_radius)
    cells = torch.nonzero(choice >= 0).flatten()
    chosen, (cx, cy) = boxes[choice[cells]], centres[cells].T
    logits[cells] = torch.logit(scores[choice[cells]].clamp(FLOOR, 1 - FLOOR))
    distances = torch.stack([cx - chosen[:, 0], cy - chosen[:, 1], chosen[:, 2] - cx, chosen[:, 3] - cy], 1)
    ltrb[cells] = distances / cell_strides[cells, None]
    return logits, ltrb
