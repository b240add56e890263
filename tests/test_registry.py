"""Every name in edgekit/registry.py resolves to the implementation it names, and the chain uses those tables."""

from __future__ import annotations

from edgekit import registry


def test_every_entry_resolves() -> None:
    tables = [registry.TASKS, registry.STUDENTS, registry.DETECTION_MODELS, registry.METHOD_TERMS,
              registry.METHOD_STRATEGIES, registry.RUNTIMES, *registry.DATA_FORMATS.values(),
              {k: f["writer"] for k, f in registry.FORMATS.items()}]
    for table in tables:
        for name, reference in table.items():
            assert callable(registry.load(reference)), f"{name}: {reference}"
    assert "rpi4" in registry.load(registry.TARGETS)()
    assert {a["format"] for a in registry.ARTIFACTS} == set(registry.FORMATS)


def test_the_chain_reads_the_tables() -> None:
    from edgekit.config import METHOD_CHOICES
    from edgekit.distill.method_spec import STRATEGIES, TERMS
    from edgekit.runtime.runners import LiteRTRunner, OnnxRunner

    assert METHOD_CHOICES["task"] == tuple(registry.TASKS)
    assert METHOD_CHOICES["student"] == (*registry.STUDENTS, "auto")  # auto: chosen from registry.STUDENT_CANDIDATES
    assert (TERMS, STRATEGIES) == (tuple(registry.METHOD_TERMS), tuple(registry.METHOD_STRATEGIES))
    assert registry.runner_class("a/model.onnx") is OnnxRunner
    assert registry.runner_class("model_int8.tflite") is LiteRTRunner
    assert registry.runner_class("model_int8.pte").runtime == "executorch"
    task = registry.get_task("detect")
    assert task.name == "detect" and task.metric.name == "mAP50" and registry.get_task("detect") is task
