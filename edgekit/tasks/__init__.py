"""The tasks the chain runs: each is a ``Task`` (tasks/base.py) in a module of its own, named in edgekit/registry.py."""

from edgekit.registry import TASKS, get_task

__all__ = ["TASKS", "get_task"]
