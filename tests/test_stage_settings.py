"""Each stage's settings are its own frozen dataclass: what it may read, and what its fingerprint holds."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
from rich.console import Console

from edgekit.config import Settings
from edgekit.stages.context import StageContext
from edgekit.stages.settings import RUN_LEVEL, STAGE_SETTINGS, for_stage

DATA = {"task", "data", "images", "size", "seed", "mean", "std"}
TRAINING = DATA | {"batch_size", "hflip"}
# The fingerprints the stages had as one flat STAGE_KEYS table, before the dataclasses; export gained the seed,
# which splits detection data.
EXPECTED = {
    "teacher": TRAINING | {"teacher", "teacher_arch", "teacher_epochs", "teacher_lr", "pretrained"},
    "distill": TRAINING | {"student", "width", "temperature", "alpha", "distill_epochs", "distill_lr", "method",
                           "teacher_layers", "student_layers", "assistants", "generations", "pretrained",
                           "student_weights"},
    "quantize": TRAINING | {"temperature", "alpha", "quant_method", "qat_epochs", "qat_lr", "calibration_batches",
                         "calibration_images", "weight_range"},
    "export": DATA | {"io", "max_drop", "accuracy_budget"},  # the accuracy goal decides which layers stay float
    "benchmark": DATA | {"target", "threads", "latency_runs", "latency_seconds"},
}


@pytest.mark.parametrize("stage", list(EXPECTED))
def test_fingerprint_is_the_stage_settings(stage: str) -> None:
    assert set(for_stage(Settings(), stage).fingerprint()) == EXPECTED[stage]


def test_every_setting_belongs_to_a_stage_or_to_the_run() -> None:
    read = {f.name for cls in STAGE_SETTINGS.values() for f in dataclasses.fields(cls)}
    assert {f.name for f in dataclasses.fields(Settings)} - read == set(RUN_LEVEL)


def test_detection_leaves_out_what_it_never_reads() -> None:
    fingerprint = for_stage(Settings(task="detect"), "distill").fingerprint()
    assert not {"method", "student", "teacher_layers", "hflip"} & set(fingerprint)
    assert fingerprint["width"] == 0.35


def test_only_the_stage_own_settings_change_its_fingerprint() -> None:
    base = Settings()
    runtime = dataclasses.replace(base, latency_runs=7, budget=["size_mb=1"], train_device="cpu",
                                  soft_label_cache="off", qat_epochs=9)
    assert for_stage(base, "distill").fingerprint() == for_stage(runtime, "distill").fingerprint()
    assert for_stage(base, "quantize").fingerprint() != for_stage(runtime, "quantize").fingerprint()
    assert for_stage(base, "benchmark").fingerprint() != for_stage(runtime, "benchmark").fingerprint()


def test_teacher_fingerprint_names_its_source() -> None:
    ensemble = for_stage(Settings(method="ensemble", ensemble_size=3), "teacher").fingerprint()
    assert ensemble["ensemble"] == {"extra_teachers": [], "trained": 3, "weights": []}
    own = for_stage(Settings(method="self", student="mobilenet_v3_small", width=0.5), "teacher").fingerprint()
    assert own["self"] == {"student": "mobilenet_v3_small", "width": 0.5}
    assert "ensemble" not in for_stage(Settings(), "teacher").fingerprint()


def test_a_stage_cannot_read_another_stage_settings(tmp_path: Path) -> None:
    ctx = StageContext(settings=Settings(), out=tmp_path, console=Console(quiet=True))
    export = ctx.for_stage("export")
    assert export.settings.size == 32
    with pytest.raises(AttributeError):
        export.settings.distill_epochs  # noqa: B018 - the read must fail
    with pytest.raises(dataclasses.FrozenInstanceError):
        export.settings.size = 64  # type: ignore[misc]
    assert export.for_stage("export").settings is export.settings
    with pytest.raises(TypeError, match="ExportSettings"):
        export.for_stage("distill")


def test_benchmark_records_every_setting() -> None:
    settings = Settings(budget=["size_mb=2"])
    assert for_stage(settings, "benchmark").record == dataclasses.asdict(settings)
