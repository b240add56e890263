"""The tasks the chain runs: each is a ``Task`` (tasks/base.py) in a module of its own."""

from __future__ import annotations

from functools import lru_cache
from importlib import import_module
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from edgekit.tasks.base import Task

TASKS = {"classify": "edgekit.tasks.classify:ClassificationTask", "detect": "edgekit.tasks.detect:DetectionTask"}


@lru_cache(maxsize=None)
def get_task(name: str) -> Task:
    module, cls = TASKS[name].split(":")
    return getattr(import_module(module), cls)()
