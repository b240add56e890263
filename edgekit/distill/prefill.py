"""Fill the soft-label cache for several methods in one pass of the teacher.

Each method's first run pays for the teacher's forward pass over every epoch's augmented images (a cold
cache), and methods that read different features (kd: logits; at: attention maps; rkd: embeddings)
each pay it again, because an epoch is read only when all of its parts are there. Prefilling with a
combined loss (e.g. ``kd+fitnet+at+rkd``) runs the teacher once and writes every part those methods
read, so each of them, their T/alpha trials and the QAT stage then find the cache warm.
"""

from __future__ import annotations

import dataclasses
import time
from typing import Any

import torch

from edgekit.distill.losses import DistillLoss
from edgekit.distill.method_spec import parse_method, reads_features
from edgekit.distill.soft_label_cache import SoftLabelCache
from edgekit.distill.teacher_feed import TeacherFeed
from edgekit.distill.train_loop import augment, epoch_plan


def union_method(methods: list[str], features: bool = True) -> str | None:
    """One method text with every term that the single-teacher ``methods`` read (``kd,dkd,at`` -> ``kd+dkd+at``);
    without ``features`` (a teacher that gives logits only) the logit terms alone. None when nothing is left.

    Strategies learn from other models (an ensemble, assistants, an earlier generation): not this teacher's cache.
    """
    names: list[str] = []
    for text in methods:
        method = parse_method(text)
        if method.strategy is None:
            names += [n for n, _ in method.terms if features or not reads_features(n)]
    return "+".join(dict.fromkeys(names)) or None


@torch.no_grad()
def prefill_soft_labels(teacher: torch.nn.Module, loss: DistillLoss, x: torch.Tensor, cache: SoftLabelCache, *,
                        epochs: int, augment_seed: int, hflip: bool, batch_size: int = 64) -> dict[str, float]:
    """Write the epochs of ``cache`` that lack any part ``loss`` reads; returns epochs written, found, seconds.

    The views are the training loop's (train_loop.epoch_plan), so a run with the same augmentation seed
    reads exactly what its own teacher pass would have computed.
    """
    started = time.perf_counter()
    feed = TeacherFeed(teacher, loss, cache, x[:1], len(x), epochs, "prefill")
    if feed.cache is None:  # over soft_label_cache_mb: TeacherFeed said so; nothing to fill
        return {"epochs_written": 0, "epochs_found": 0, "seconds": round(time.perf_counter() - started, 1)}
    written = found = 0
    try:
        for epoch in range(epochs):
            feed.start_epoch(epoch)
            if feed.table is not None:
                found += 1
                continue
            _, shifts, flips = epoch_plan(len(x), 0, augment_seed, epoch, hflip)
            for start in range(0, len(x), batch_size):
                idx = torch.arange(start, min(start + batch_size, len(x)))
                feed(augment(x[idx], shifts[idx], flips[idx]), idx)
            feed.end_epoch(epoch)
            written += 1
    finally:
        feed.close()
    return {"epochs_written": written, "epochs_found": found, "seconds": round(time.perf_counter() - started, 1)}


def prefill_for_run(ctx: Any, methods: list[str], epochs: int, folder: str) -> dict[str, Any] | None:
    """Fill the soft-label cache in ``folder`` for the teacher stage of ``ctx`` (a StageContext) and every
    single-teacher method of ``methods``: what they read, for ``epochs`` epochs of the run's views.

    Returns the union method and prefill_soft_labels' counts; None when the cache is off or no method reads
    this teacher.
    """
    from edgekit.distill.cache_policy import soft_label_cache
    from edgekit.distill.methods import build_loss
    from edgekit.models.builders import build_model, student_spec
    from edgekit.models.stage_models import load_teacher
    from edgekit.pipeline.runner import stage_dir

    s = ctx.settings
    if s.soft_label_cache == "off":
        return None
    teacher = load_teacher(stage_dir(ctx.out, "teacher"))
    union = union_method(methods, features=not getattr(teacher, "opaque", False))
    if union is None:
        return None
    x, _ = ctx.split("train")
    student = build_model(student_spec(s.student, s.width, len(ctx.data.classes)))
    loss = build_loss(parse_method(union), student, teacher, s.size, temperature=s.temperature, alpha=s.alpha,
                      student_layers=s.student_layers, teacher_layers=s.teacher_layers)
    cache = soft_label_cache(dataclasses.replace(s, soft_label_cache=folder), ctx.out, teacher, x, s.seed)
    if cache is None:
        return None
    return {"method": union, **prefill_soft_labels(teacher, loss, x, cache, epochs=epochs, augment_seed=s.seed,
                                                   hflip=s.hflip, batch_size=s.batch_size)}
