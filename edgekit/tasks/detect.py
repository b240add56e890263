"""Object detection: a TinyDetector student learns from a wider TinyDetector (or the user's FCOS) teacher by
score KD, box imitation and neck-feature imitation; the metric is COCO mAP50 (and mAP50-95).

Files have two outputs, ``scores`` [1, C, A] and ``boxes`` [1, 4, A] (channel-major); preprocess.json gains a
``detection`` section with what an app needs to decode them. Torch and the model code are imported inside
the methods, so the CLI reads this class's defaults and checks before any of them load.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from edgekit.detect.postprocess import DEFAULT_IOU, DEFAULT_SCORE
from edgekit.errors import EdgekitError
from edgekit.tasks.base import Metric, Outputs, Task, Trained

if TYPE_CHECKING:
    import torch

    from edgekit.choose.candidates import ChoiceInputs
    from edgekit.config import Settings
    from edgekit.detect.data import DetectionData
    from edgekit.stages.context import StageContext

STUDENT_NECK = 48
SCORE_EPS = 1e-4
OUTPUTS = ("scores", "boxes")
# Under this mAP50 a detector misses or misplaces most objects: the run says so (bench/learned_check.py).
USEFUL_MAP50 = 0.10


def kd_loss(alpha: float, temperature: float, teacher_neck: int) -> Any:
    """``alpha`` weighs the distillation terms and ``1 - alpha`` the ground-truth loss; alpha 0 trains from scratch."""
    from edgekit.detect.losses import DetectionKD

    return DetectionKD(STUDENT_NECK, teacher_neck, temperature=temperature, gt_weight=1.0 - alpha,
                       weights={"score_kd": alpha, "box_imitation": alpha, "feature": alpha})


def distill_loss(alpha: float, temperature: float, teacher: Any) -> tuple[Any, bool]:
    """The distill stage's loss for ``teacher`` (None: labels only), and whether that teacher gives outputs only
    (a YOLO file): then feature imitation is off."""
    from edgekit.detect.user_teacher import TEACHER

    outputs_only = teacher is not None and not getattr(teacher, "has_features", True)
    loss = kd_loss(alpha, temperature, TEACHER["neck"] if teacher is None or outputs_only else teacher.spec.neck)
    if outputs_only:
        loss.weights["feature"] = 0.0
    return loss, outputs_only


def _ground_truth(student: dict, _teacher: dict | None, targets: Any) -> tuple[Any, dict[str, float]]:
    """The teacher's loss: focal (quality) class loss and GIoU against the labels."""
    from edgekit.detect.losses import ground_truth_loss

    return ground_truth_loss(student, targets)


def _location_major(outputs: Outputs) -> tuple[np.ndarray, np.ndarray]:
    return outputs["scores"].transpose(0, 2, 1), outputs["boxes"].transpose(0, 2, 1)


def _prepared_outputs(model: Any, x: torch.Tensor) -> dict[str, Any]:
    """A prepared QAT graph returns what the files return (sigmoid scores, box distances, channel-major): the
    student's logits are recovered from its fake-quantized scores. It exposes no neck features."""
    import torch

    scores, boxes = model(x)
    logits = torch.logit(scores.transpose(1, 2).clamp(SCORE_EPS, 1 - SCORE_EPS))
    return {"logits": logits, "boxes": boxes.transpose(1, 2), "features": None}


class DetectionTask(Task):
    name = "detect"
    metric = Metric(key="map50", name="mAP50", also=("map50_95",), names={"map50_95": "mAP50-95"},
                    agreement="F1 of matching the file's detections to PyTorch's (same class, IoU >= 0.5) at "
                              f"score {DEFAULT_SCORE}, NMS IoU {DEFAULT_IOU}")
    output_names = OUTPUTS  # the first names the classes on axis 1 ([batch, classes, locations])
    output_descriptions = {"scores": "[batch, classes, locations]: each class's confidence (sigmoid) at each anchor "
                                     "point; the labels file names axis 1",
                           "boxes": "[batch, 4, locations]: the box's left, top, right, bottom distances from each "
                                    "anchor point, in strides (preprocess.json's detection section decodes them)"}
    model_kind = "object detector"
    alpha_convention = "weight of the distillation terms (score KD, box and feature imitation)"
    # F1 of matching detections at the app's thresholds, where a score near the threshold or an NMS tie flips a
    # detection in or out; INT8 files of the default run measured 0.985
    parity_gate = 0.95
    resize_mode = "letterbox"  # objects keep their shape; boxes map back by one scale and offset
    # d1: mosaic, scale jitter and colour (detect/augment.py); d2: a YOLO teacher teaches the ground truth's cells
    training_version = "+d2"
    teacher_onnx_files = ("yolo.onnx",)  # detect/yolo_teacher.FILE, named here so the CLI needs no torch
    # Batch 16 and AdamW at 0.02 (one-cycle): a scratch x0.35 student on the built-in scenes reached mAP50 0.86 in
    # 10 epochs, against 0.26 in 6 epochs at batch 32 and 0.004 (benchmarks/results/detect_scenes.md).
    defaults = {"size": 96, "batch_size": 16, "teacher_epochs": 12, "teacher_lr": 0.02, "distill_epochs": 10,
                "distill_lr": 0.02, "qat_epochs": 1, "qat_lr": 0.002, "temperature": 2.0, "alpha": 0.5}
    # classification's student and method settings; flips are always on (scenes and photos may mirror)
    ignored_keys = frozenset({"student", "method", "teacher_layers", "student_layers", "assistants", "generations",
                              "hflip"})

    def quick_check(self, settings: Settings, stages: list[str]) -> None:
        from edgekit.detect.loading import quick_check_detection_data
        from edgekit.detect.teacher_archs import check_detection_teacher_arch

        quick_check_detection_data(settings.data, settings.images)
        if "teacher" in stages:
            check_detection_teacher_arch(settings.teacher_arch, settings.teacher)

    def validate(self, settings: Settings) -> None:
        if settings.nproc > 1:
            raise EdgekitError("detection trains on one process", "leave --nproc out")
        if settings.method != "kd":
            raise EdgekitError(f"detection distils with kd only, got --method {settings.method}", "leave --method out")
        from edgekit.detect.tiny_detector import STRIDES

        if settings.size % STRIDES[-1]:
            fit = -(-settings.size // STRIDES[-1]) * STRIDES[-1]
            raise EdgekitError(f"--size {settings.size} is not a multiple of {STRIDES[-1]}, the detector's largest "
                               "stride: the letterbox would not tile into its grid", f"pass --size {fit}")
        if settings.student_weights:
            raise EdgekitError("--student-weights starts classification students", "leave --student-weights out for "
                               "--task detect (--pretrained starts TinyDetector x1.0 backbones from MobileNetV2)")

    def size_from_data(self, settings: Settings) -> tuple[int, str] | None:
        """Photos (a data.yaml or COCO json) are sized so their small objects cover a stride-8 cell
        (detect/input_size.py); the built-in scenes keep 96 px."""
        if settings.data is None:
            return None
        from edgekit.detect.input_size import size_from_data

        chosen = size_from_data(settings.data, settings.images)
        return None if chosen is None else (chosen.size, chosen.why)

    def distill_epochs_from_data(self, settings: Settings) -> tuple[int, str] | None:
        """Photos with few training images distil for more epochs, so that the student takes as many steps as on
        the built-in scenes (detect/train_length.py); the built-in scenes keep the default."""
        if settings.data is None:
            return None
        from edgekit.detect.train_length import distill_epochs, training_images

        count = training_images(settings.data, settings.images)
        return None if not count else distill_epochs(count, settings.batch_size, settings.distill_epochs)

    def load_data(self, settings: Settings) -> DetectionData:
        from edgekit.detect.loading import load_detection

        return load_detection(settings.data, settings.images, settings.size, settings.seed, settings.skip_bad_images)[0]

    def choice_inputs(self, settings: Settings, auto: bool) -> ChoiceInputs:
        """TinyDetector widths (the registry's, or the config's ``[[candidates]]``) at the run's input size, or the
        width given; each built with the data's classes and the student's neck."""
        from edgekit.choose.candidates import Candidate, ChoiceInputs, candidates_from_config
        from edgekit.detect.tiny_detector import DetectorSpec, TinyDetector
        from edgekit.registry import DETECTOR_CANDIDATES

        classes = len(self.load_data(settings).classes)
        size = int(settings.size)
        if not auto:
            candidates = [Candidate("tiny_detector", float(settings.width), size)]
        elif settings.candidates:
            candidates = candidates_from_config(settings.candidates, size, ("tiny_detector",))
        else:
            candidates = [Candidate(arch, float(w), size) for arch, widths in DETECTOR_CANDIDATES for w in widths]
        return ChoiceInputs(candidates, lambda c: TinyDetector(DetectorSpec(classes, c.width, STUDENT_NECK)), classes,
                            size)

    def targets(self, data: DetectionData, split: str) -> Any:
        return data.splits[split]

    def check_models(self, ctx: StageContext, stages: list[str]) -> None:
        s = ctx.settings
        if s.pretrained and (("teacher" in stages and s.teacher is None) or ("distill" in stages and s.width == 1.0)):
            from edgekit.detect.pretrained_backbone import ARCH
            from edgekit.models.pretrained import check_pretrained

            check_pretrained(ARCH, s.pretrained)  # the file is in the cache (or downloaded now) before training
        classes = len(ctx.data.classes)  # decoding validates every image and label file
        if "teacher" in stages and ctx.settings.teacher is not None:
            path = Path(ctx.settings.teacher)
            if path.suffix == ".onnx":
                from edgekit.detect.yolo_teacher import check_yolo_teacher

                check_yolo_teacher(path, classes, list(ctx.data.classes))
                return
            from edgekit.detect.user_teacher import load_user_detector

            load_user_detector(path, classes, ctx.settings.teacher_arch)

    # --- models ---------------------------------------------------------------------------------------
    def trained_teacher(self, settings: Settings) -> str:
        from edgekit.detect.user_teacher import TEACHER

        return f"TinyDetector x{TEACHER['width']:g} (neck {TEACHER['neck']}, head depth {TEACHER['head_depth']})"

    def train_teacher(self, ctx: StageContext, folder: Path, seed: int, label: str) -> Trained:
        """A wider and deeper TinyDetector from the labels."""
        import torch

        from edgekit.detect.user_teacher import TEACHER

        s = ctx.settings
        torch.manual_seed(seed)
        model = self.build_model({"num_classes": len(ctx.data.classes), **TEACHER})
        start = None
        if s.pretrained:
            from edgekit.detect.pretrained_backbone import init_backbone

            start = init_backbone(model, s.pretrained)
            ctx.console.print(f"{label}: starts from {start}", markup=False, highlight=False)
        model.train()
        history = self._train(ctx, model, _ground_truth, None, epochs=s.teacher_epochs, lr=s.teacher_lr, seed=seed,
                              stage=label)
        model.eval()
        self.save_model(model, folder, {})
        source = f"trained from torchvision {s.pretrained} backbone weights" if start and start.startswith("backbone") \
            else "trained"
        return Trained(model, history, {"source": source, "arch": self._arch(model),
                                        **({"initial_weights": start} if start else {})})

    def load_user_teacher(self, ctx: StageContext, path: Path, folder: Path) -> Trained:
        if path.suffix == ".onnx":
            from edgekit.detect.yolo_teacher import keep_yolo_teacher

            yolo = keep_yolo_teacher(path, folder, len(ctx.data.classes), tuple(ctx.settings.mean),
                                     tuple(ctx.settings.std))
            return Trained(yolo, [], {"source": f"YOLO ONNX {path.name} (onnxruntime, at the run's {ctx.settings.size} "
                                                "px; outputs only: feature imitation off)", "arch": self._arch(yolo)})
        from edgekit.detect.user_teacher import load_user_detector

        model = load_user_detector(path, len(ctx.data.classes), ctx.settings.teacher_arch)
        self.save_model(model, folder, {})
        return Trained(model, [], {"source": f"file {path}", "arch": self._arch(model)})

    @staticmethod
    def _arch(model: Any) -> str:
        from edgekit.detect.evaluate import describe

        return describe(model)

    def load_teacher(self, folder: Path) -> torch.nn.Module:
        from edgekit.detect.evaluate import load_detector

        return load_detector(folder)

    def load_student(self, folder: Path) -> torch.nn.Module:
        from edgekit.detect.evaluate import load_detector

        return load_detector(folder)

    def save_model(self, model: Any, folder: Path, spec: dict[str, Any]) -> None:
        from edgekit.detect.evaluate import save_detector

        save_detector(model, folder)

    def describe(self, model: Any, spec: dict[str, Any] | None = None) -> dict[str, Any]:
        from edgekit.detect.evaluate import spec_summary

        return {**spec_summary(model), **({"arch": "tiny_detector"} if spec is not None else {})}

    def init_student(self, ctx: StageContext, model: torch.nn.Module, spec: dict[str, Any]) -> str | None:
        """--pretrained: MobileNetV2's ImageNet weights in the backbone when the student is x1.0 (else said random)."""
        if not ctx.settings.pretrained:
            return None
        from edgekit.detect.pretrained_backbone import init_backbone

        return init_backbone(model, ctx.settings.pretrained)

    def student_chain(self, ctx: StageContext, teacher_params: int) -> list[tuple[str, dict[str, Any]]]:
        return [("distill", {"num_classes": len(ctx.data.classes), "width": ctx.settings.width, "neck": STUDENT_NECK})]

    def build_model(self, spec: dict[str, Any]) -> torch.nn.Module:
        from edgekit.detect.tiny_detector import DetectorSpec, TinyDetector

        return TinyDetector(DetectorSpec(**spec))

    # --- training -------------------------------------------------------------------------------------
    def _train(self, ctx: StageContext, model: Any, loss: Any, teacher: Any, *, epochs: int, lr: float, seed: int,
               stage: str, forward: Any = None) -> list[dict[str, float]]:
        from edgekit.detect.train import detection_recipe
        from edgekit.distill.train_loop import train

        return train(model, ctx.images("train"), ctx.targets("train"), loss_fn=loss, teacher=teacher, epochs=epochs,
                     lr=lr, batch_size=ctx.settings.batch_size, seed=seed, stage=stage,
                     recipe=detection_recipe(len(ctx.data.classes), forward, epochs=epochs,
                                             mean=ctx.settings.mean, std=ctx.settings.std))

    def distill(self, ctx: StageContext, model: Any, teacher: Any, teacher_layers: list[str], label: str) -> Trained:
        s = ctx.settings
        loss, outputs_only = distill_loss(s.alpha, s.temperature, teacher)
        if outputs_only:
            ctx.console.print(f"{label}: the teacher gives outputs only: score KD and box imitation, feature "
                              "imitation off", markup=False, highlight=False)
        history = self._train(ctx, model, loss, teacher, epochs=s.distill_epochs, lr=s.distill_lr, seed=s.seed,
                              stage=label)
        return Trained(model, history, {"feature_imitation": not outputs_only} if teacher is not None else {})

    def train_qat(self, ctx: StageContext, prepared: Any, teacher: Any) -> list:
        """Score KD and box imitation keep guiding; feature imitation is off (the graph exposes only its outputs)."""
        from edgekit.detect.user_teacher import TEACHER

        s = ctx.settings
        loss = kd_loss(s.alpha, s.temperature, TEACHER["neck"])
        loss.weights["feature"] = 0.0
        return self._train(ctx, prepared, loss, teacher, epochs=s.qat_epochs, lr=s.qat_lr, seed=s.seed + 1,
                           stage="quantize (QAT)", forward=_prepared_outputs)

    def qat_loss(self, settings: Settings) -> str:
        return (f"score KD (T {settings.temperature}) and box imitation at alpha {settings.alpha}, without feature "
                "imitation: the prepared INT8 graph exposes only its outputs")

    # --- outputs and the metric ---------------------------------------------------------------------------
    def outputs(self, model: Any, x: torch.Tensor) -> Outputs:
        from edgekit.detect.evaluate import raw_outputs

        scores, boxes = raw_outputs(model, x)  # location-major
        return {"scores": scores.transpose(0, 2, 1), "boxes": boxes.transpose(0, 2, 1)}

    def score(self, data: DetectionData, split: str, outputs: Outputs) -> dict[str, float]:
        from edgekit.detect.evaluate import map_from_raw

        return map_from_raw(data, split, *_location_major(outputs))

    def _app_detections(self, data: DetectionData, outputs: Outputs) -> list:
        from edgekit.detect.train import detections

        return detections(*_location_major(outputs), data.size, DEFAULT_SCORE, DEFAULT_IOU, multi_label=False)

    def agreement(self, data: DetectionData, outputs: Outputs, reference: Outputs) -> float:
        from edgekit.detect.agreement import detection_agreement

        n = len(outputs["scores"])
        return detection_agreement(self._app_detections(data, outputs),
                                   self._app_detections(data, {k: v[:n] for k, v in reference.items()}))

    # --- files ----------------------------------------------------------------------------------------
    def io_entry(self, path: Path, classes: list[str]) -> dict[str, Any]:
        from edgekit.runtime.executorch_runner import pte_io
        from edgekit.runtime.runners import onnx_io, tflite_io

        if path.suffix == ".onnx":
            return onnx_io(path)
        if path.suffix == ".pte":
            return pte_io(path, OUTPUTS)  # the model's own output order

        def order(shapes: list[list[int]]) -> list[int]:
            # which is which: the scores have one column per class, the boxes four (same width: the first is scores)
            return sorted(range(len(shapes)), key=lambda i: (shapes[i][1] != len(classes), i))

        return tflite_io(path, OUTPUTS, order)

    def parity(self, outputs: Outputs, reference: Outputs) -> tuple[dict[str, Any], str]:
        n = len(outputs["scores"])
        extra = {"parity_images": n,
                 "parity_max_score_diff": float(np.abs(outputs["scores"] - reference["scores"][:n]).max()),
                 "parity_max_box_diff": float(np.abs(outputs["boxes"] - reference["boxes"][:n]).max())}
        return extra, (f"max |score - PyTorch| {extra['parity_max_score_diff']:.4f}, "
                       f"max |box - PyTorch| {extra['parity_max_box_diff']:.4f}")

    def document_extra(self, classes: list[str]) -> dict[str, Any]:
        from edgekit.detect.tiny_detector import STRIDES

        return {"detection": {
            "task": "detect", "outputs": list(OUTPUTS), "output_layout": "[batch, channels, locations]",
            "strides": list(STRIDES),
            "grid": "per stride, row-major cells; centre = ((col + 0.5) * stride, (row + 0.5) * stride) in input pixels",
            "box_encoding": "ltrb: distances from the cell centre to the left, top, right, bottom sides, in strides",
            "scores": f"sigmoid, one column per class ({len(classes)})",
            "score_threshold": DEFAULT_SCORE, "iou_threshold": DEFAULT_IOU,
            "nms": "one box per location, of its best class; then class-wise greedy NMS"}}

    def class_count(self, outputs: Outputs) -> int:
        return int(outputs["scores"].shape[1])  # [1, C, A]

    def app_result(self, outputs: Outputs, classes: list[str], image_size: tuple[int, int],
                   input_size: tuple[int, int], options: dict[str, Any]) -> dict[str, Any]:
        """Detections with boxes in the original image's pixels: the model sees the image letterboxed into its
        input (a run exported before letterboxing: stretched, so x and y scale back separately). Thresholds from
        the recipe unless given."""
        from edgekit.data.preprocess import unletterbox_boxes
        from edgekit.detect.postprocess import decode

        det = options["detection"]
        height, width = input_size
        score = det["score_threshold"] if options["score"] is None else options["score"]
        iou = det["iou_threshold"] if options["iou"] is None else options["iou"]
        found = decode(outputs["scores"][0].T, outputs["boxes"][0].T, width, list(det["strides"]), score, iou)
        if options.get("resize") == "letterbox":
            boxes = unletterbox_boxes(np.array([d["box"] for d in found], np.float32), image_size[1], image_size[0],
                                      (height, width)).tolist()
        else:
            sx, sy = image_size[0] / width, image_size[1] / height
            boxes = [[d["box"][0] * sx, d["box"][1] * sy, d["box"][2] * sx, d["box"][3] * sy] for d in found]
        return {"detections": [{"class": classes[d["label"]], "score": round(d["score"], 4),
                                "box": [round(v, 1) for v in box]} for d, box in zip(found, boxes)]}

    def useful_level(self, num_classes: int) -> dict[str, Any]:
        return {"floor": USEFUL_MAP50, "of_teacher": 0.5,
                "floor_means": f"mAP50 {USEFUL_MAP50}: most objects missed or misplaced"}

    def report_fields(self) -> dict[str, Any]:
        m = self.metric
        return {"task": self.name, "metric": {"key": m.key, "name": m.name, "also": list(m.also),
                                              "agreement": m.agreement}}
