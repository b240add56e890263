"""Image classification: a torchvision teacher (or the user's), a MobileNet student, top-1 accuracy.

Torch and the model code are imported inside the methods: the CLI reads this class's defaults and checks
before any of them load.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from edgekit.tasks.base import Metric, Outputs, Task, Trained

if TYPE_CHECKING:
    import torch

    from edgekit.config import Settings
    from edgekit.choose.candidates import ChoiceInputs
    from edgekit.data.dataset import ImageData
    from edgekit.stages.context import StageContext


def _supervised(student_logits: torch.Tensor, _teacher: torch.Tensor | None, y: torch.Tensor):
    import torch.nn.functional as F

    loss = F.cross_entropy(student_logits, y)
    return loss, {"ce": float(loss.detach())}


class ClassificationTask(Task):
    name = "classify"
    metric = Metric(key="accuracy", name="accuracy")
    output_names = ("logits",)
    output_descriptions = {"logits": "class scores (logits: the highest is the prediction; softmax gives probabilities)"}
    model_kind = "image classifier"
    alpha_convention = "weight of the teacher terms"
    tunable = True
    parity_gate = 0.99  # top-1 agreement with the PyTorch model

    def quick_check(self, settings: Settings, stages: list[str]) -> None:
        if settings.data is not None:
            from edgekit.data.image_folder import check_image_folder

            check_image_folder(Path(settings.data))

    def load_data(self, settings: Settings) -> ImageData:
        from edgekit.data.loading import load_image_data
        from edgekit.data.preprocess import preprocess_spec

        return load_image_data(settings.data, preprocess_spec(settings), settings.skip_bad_images)

    def choice_inputs(self, settings: Settings, auto: bool) -> ChoiceInputs:
        """The student candidates (``auto``: the registry's set or the config's ``[[candidates]]``; else the one
        given), sized from the images' native short side (at least 32 px: the built-in 8 px digits train at 32),
        read from file headers before any image is decoded."""
        from edgekit.choose.candidates import (Candidate, ChoiceInputs, candidates_from_config, classifier_builder,
                                               default_candidates)
        from edgekit.registry import STUDENTS

        if settings.data is None:
            classes, native = 10, 32
        else:
            from edgekit.data.image_folder import check_image_folder, native_side

            classes = len(check_image_folder(Path(settings.data)))
            native = max(32, native_side(Path(settings.data)))
        if not auto:
            candidates = [Candidate(settings.student, float(settings.width), int(settings.size))]
        elif settings.candidates:
            candidates = candidates_from_config(settings.candidates, native, STUDENTS)
        else:
            candidates = default_candidates(native)
        return ChoiceInputs(candidates, classifier_builder(classes), classes, native)

    def targets(self, data: ImageData, split: str) -> torch.Tensor:
        return data.labels(split)

    def check_models(self, ctx: StageContext, stages: list[str]) -> None:
        from edgekit.models.builders import build_model, student_spec
        from edgekit.models.user_weights import check_teacher_outputs, load_user_teacher

        s = ctx.settings
        if "distill" in stages:
            student_spec(s.student, s.width, 2)
        if "teacher" in stages:
            build_model({"arch": s.teacher_arch, "num_classes": 2})
        self._check_initial_weights(s, stages)
        n_classes = len(ctx.data.classes)  # decoding the data validates its layout and every image
        if "teacher" in stages and s.teacher is not None:
            model, _ = load_user_teacher(Path(s.teacher), s.teacher_arch, n_classes)  # reads and matches the weights
            check_teacher_outputs(model, ctx.eval_images()[:2], n_classes, s.teacher)

    def _check_initial_weights(self, s: Settings, stages: list[str]) -> None:
        """--pretrained and --student-weights, before training: the published file is in the cache (or downloaded
        now), the user's file fits the student."""
        from edgekit.config import method_strategy
        from edgekit.models.pretrained import check_pretrained

        self_distill = method_strategy(s.method) == "self"
        if s.pretrained and "teacher" in stages and s.teacher is None:
            check_pretrained(s.student if self_distill else s.teacher_arch, s.pretrained,
                             s.width if self_distill else None)
        if s.pretrained and "distill" in stages:
            check_pretrained(s.student, s.pretrained, s.width)
        if s.student_weights and "distill" in stages:
            from edgekit.models.builders import build_model, student_spec
            from edgekit.models.pretrained import init_from_file

            init_from_file(build_model(student_spec(s.student, s.width, 2)), Path(s.student_weights),
                           f"{s.student} x{s.width:g}")

    def init_student(self, ctx: StageContext, model: torch.nn.Module, spec: dict[str, Any]) -> str | None:
        """The final student's starting weights: --student-weights, else --pretrained, else none (random)."""
        s = ctx.settings
        if s.student_weights:
            from edgekit.models.pretrained import init_from_file

            return init_from_file(model, Path(s.student_weights), f"{spec['arch']} x{spec['width']:g}")
        if s.pretrained:
            from edgekit.models.pretrained import init_pretrained

            return init_pretrained(model, spec["arch"], s.pretrained, spec["width"])
        return None

    # --- models ---------------------------------------------------------------------------------------
    def trained_teacher(self, settings: Settings) -> str:
        from edgekit.config import method_strategy

        if method_strategy(settings.method) == "self":
            return f"{settings.student} x{settings.width:g} (generation 1 of self-distillation)"
        return settings.teacher_arch

    def train_teacher(self, ctx: StageContext, folder: Path, seed: int, label: str) -> Trained:
        """The torchvision teacher_arch from the labels, or for --method self the student itself (its first
        generation)."""
        import torch

        from edgekit.config import method_strategy
        from edgekit.models.builders import student_spec

        s = ctx.settings
        torch.manual_seed(seed)
        classes = len(ctx.data.classes)
        self_distill = method_strategy(s.method) == "self"
        spec = student_spec(s.student, s.width, classes) if self_distill else {"arch": s.teacher_arch, "num_classes": classes}
        model = self.build_model(spec)
        start = None
        if s.pretrained:
            from edgekit.models.pretrained import init_pretrained

            start = init_pretrained(model, spec["arch"], s.pretrained, spec.get("width"))
            ctx.console.print(f"{label}: starts from {start}", markup=False, highlight=False)
        model.train()
        history = self._train(ctx, model, _supervised, None, epochs=s.teacher_epochs, lr=s.teacher_lr, seed=seed,
                              stage=label)
        model.eval()
        self.save_model(model, folder, spec)
        source = f"{s.student} x{s.width}, generation 1 (self-distillation)" if self_distill else \
            f"{s.teacher_arch} fine-tuned from torchvision {s.pretrained} weights" if start and "random" not in start else \
            f"trained {s.teacher_arch}"
        self._check_outputs(ctx, model, source)
        return Trained(model, history, {"source": source, "arch": s.student if self_distill else s.teacher_arch,
                                        **({"initial_weights": start} if start else {})})

    def load_user_teacher(self, ctx: StageContext, path: Path, folder: Path) -> Trained:
        from edgekit.models.checkpoint import save_weights
        from edgekit.models.onnx_teacher import copy_onnx_model
        from edgekit.models.stage_models import EXPORTED_TEACHER, ONNX_TEACHER
        from edgekit.models.user_weights import load_user_teacher

        s = ctx.settings
        model, spec = load_user_teacher(path, s.teacher_arch, len(ctx.data.classes))
        if spec is None and path.suffix == ".onnx":
            copy_onnx_model(path, folder / ONNX_TEACHER)
            source = f"ONNX model {path.name} (onnxruntime)"
        elif spec is None:
            shutil.copyfile(path, folder / EXPORTED_TEACHER)
            source = f"exported program {path.name}"
        else:
            save_weights(model, folder, spec)
            source = f"{s.teacher_arch} from {path.name}"
        self._check_outputs(ctx, model, str(path))
        return Trained(model, [], {"source": source, "arch": s.teacher_arch})

    def _check_outputs(self, ctx: StageContext, model: Any, source: str) -> None:
        from edgekit.models.user_weights import check_teacher_outputs

        check_teacher_outputs(model, ctx.eval_images(), len(ctx.data.classes), source)

    def load_teacher(self, folder: Path) -> torch.nn.Module:
        from edgekit.models.stage_models import load_teacher

        return load_teacher(folder)

    def load_student(self, folder: Path) -> torch.nn.Module:
        from edgekit.models.stage_models import load_student

        return load_student(folder)

    def save_model(self, model: torch.nn.Module, folder: Path, spec: dict[str, Any]) -> None:
        from edgekit.models.checkpoint import save_weights

        save_weights(model, folder, spec)

    def describe(self, model: Any, spec: dict[str, Any] | None = None) -> dict[str, Any]:
        from edgekit.models.checkpoint import count_parameters

        return {"params": count_parameters(model),
                **({"arch": spec["arch"], "width": spec["width"]} if spec and "width" in spec else {})}

    def student_chain(self, ctx: StageContext, teacher_params: int) -> list[tuple[str, dict[str, Any]]]:
        """Progressive distillation first trains teacher assistants, self-distillation further generations."""
        from edgekit.distill.assistants import assistant_widths
        from edgekit.distill.method_spec import parse_method
        from edgekit.models.builders import student_spec

        s = ctx.settings
        classes = len(ctx.data.classes)
        spec = student_spec(s.student, s.width, classes)
        strategy = parse_method(s.method).strategy
        chain: list[tuple[str, dict[str, Any]]] = []
        if strategy == "progressive":
            widths = assistant_widths(teacher_params, s.student, s.width, classes, s.assistants)
            chain = [(f"distill (assistant {i + 1} of {len(widths)}, x{w})", student_spec(s.student, w, classes))
                     for i, w in enumerate(widths)]
        elif strategy == "self":
            chain = [(f"distill (generation {g})", spec) for g in range(2, s.generations)]
        return [*chain, ("distill", spec)]

    def build_model(self, spec: dict[str, Any]) -> torch.nn.Module:
        from edgekit.models.builders import build_model

        return build_model(spec)

    def teacher_layers(self, settings: Settings) -> list[str]:
        from edgekit.distill.method_spec import parse_method

        # the teacher stage's model is the student's architecture under self-distillation
        return list(settings.student_layers if parse_method(settings.method).strategy == "self" else settings.teacher_layers)

    # --- training -------------------------------------------------------------------------------------
    def _train(self, ctx: StageContext, model: Any, loss: Any, teacher: Any, *, epochs: int, lr: float, seed: int,
               stage: str, **kw: Any) -> list[dict[str, float]]:
        from edgekit.distill.train_loop import train
        from edgekit.pipeline.distributed import training_device

        s = ctx.settings
        x, y = ctx.images("train"), ctx.targets("train")
        kw.setdefault("device", training_device(s.train_device))
        return train(model, x, y, loss_fn=loss, teacher=teacher, epochs=epochs, lr=lr, batch_size=s.batch_size,
                     hflip=s.hflip, seed=seed, stage=stage, **kw)

    def distill(self, ctx: StageContext, model: torch.nn.Module, teacher: Any, teacher_layers: list[str],
                label: str) -> Trained:
        from edgekit.distill.cache_policy import soft_label_cache
        from edgekit.distill.method_spec import parse_method
        from edgekit.distill.methods import build_loss

        s = ctx.settings
        method = parse_method(s.method)
        loss = build_loss(method, model, teacher, s.size, temperature=s.temperature, alpha=s.alpha,
                          student_layers=s.student_layers, teacher_layers=teacher_layers)
        timings: list[float] = []
        cache = {"read": 0, "computed": 0}
        history = self._train(ctx, model, loss, teacher, epochs=s.distill_epochs, lr=s.distill_lr, seed=s.seed,
                              stage=label, soft_labels=soft_label_cache(s, ctx.out, teacher, ctx.images("train"), s.seed),
                              timings=timings, cache_stats=cache)
        return Trained(model, history, {"loss_terms": [n for n, _ in method.terms], "epoch_seconds": timings,
                                        "soft_label_epochs": cache})

    def train_qat(self, ctx: StageContext, prepared: Any, teacher: Any) -> list:
        """KD at the distill stage's temperature and alpha on augmented views of its seed (its first epochs' soft
        labels come from the cache). On the CPU whatever train_device says: PT2E QAT graphs have not been run
        on a GPU here."""
        from edgekit.distill.cache_policy import soft_label_cache
        from edgekit.distill.losses import KDLoss

        s = ctx.settings
        return self._train(ctx, prepared, KDLoss(s.temperature, s.alpha), teacher, epochs=s.qat_epochs, lr=s.qat_lr,
                           seed=s.seed + 1, stage="quantize (QAT)", augment_seed=s.seed,
                           soft_labels=soft_label_cache(s, ctx.out, teacher, ctx.images("train"), s.seed), device=None)

    def useful_level(self, num_classes: int) -> dict[str, Any]:
        chance = 1 / max(num_classes, 1)
        return {"floor": round(chance + 0.1 * (1 - chance), 4), "of_teacher": 0.5,
                "floor_means": f"near chance: {100 * chance:.0f} % for {num_classes} classes, plus a tenth of the rest"}

    def qat_loss(self, settings: Settings) -> str:
        why = ("" if settings.method == "kd" else
               f", not --method {settings.method}: the prepared INT8 graph is one flattened export with no named layers "
               "for feature, attention or relation terms, and one loss keeps QAT's few epochs the same for every method")
        return f"kd (T {settings.temperature}, alpha {settings.alpha}) from the model the student last learned from{why}"

    def calibration_labels(self, ctx: StageContext) -> torch.Tensor:
        return ctx.targets("train")

    # --- outputs and the metric ---------------------------------------------------------------------------
    def outputs(self, model: Any, x: torch.Tensor) -> Outputs:
        from edgekit.distill.train_loop import predict

        return {"logits": predict(model, x).numpy()}

    def score(self, data: ImageData, split: str, outputs: Outputs) -> dict[str, float]:
        return {"accuracy": float(np.mean(outputs["logits"].argmax(1) == data.splits[split][1]))}

    def agreement(self, data: ImageData | None, outputs: Outputs, reference: Outputs) -> float:
        n = len(outputs["logits"])
        return float(np.mean(outputs["logits"].argmax(1) == reference["logits"][:n].argmax(1)))

    # --- files ----------------------------------------------------------------------------------------
    def io_entry(self, path: Path, classes: list[str]) -> dict[str, Any]:
        from edgekit.runtime.executorch_runner import pte_io
        from edgekit.runtime.runners import onnx_io, tflite_io

        if path.suffix == ".pte":
            return pte_io(path, self.output_names)
        return onnx_io(path) if path.suffix == ".onnx" else tflite_io(path)

    def parity(self, outputs: Outputs, reference: Outputs) -> tuple[dict[str, Any], str]:
        n = len(outputs["logits"])
        agreement = self.agreement(None, outputs, reference)
        return ({"parity_images": n, "parity_agreement": agreement},
                f"top-1 agreement with PyTorch {agreement:.3f} on {n} images")

    def document_extra(self, classes: list[str]) -> dict[str, Any]:
        return {"output": "logits"}

    def class_count(self, outputs: Outputs) -> int:
        return int(outputs["logits"].shape[-1])

    def app_result(self, outputs: Outputs, classes: list[str], image_size: tuple[int, int],
                   input_size: tuple[int, int], options: dict[str, Any]) -> dict[str, Any]:
        """Softmax scores of the ``top`` classes."""
        z = outputs["logits"][0].astype(np.float64)
        probs = np.exp(z - z.max())
        probs /= probs.sum()
        order = np.argsort(-probs)[:options["top"]]
        return {"top": [{"class": classes[i], "score": round(float(probs[i]), 4)} for i in order]}
