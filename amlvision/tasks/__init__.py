"""Tasks: what differs between single-label classification, multi-label classification and detection.

The training loop, the exporter, the evaluator and the server ask the run's task instead of assuming
one label per image. A task is one module ``amlvision/tasks/<name>.py`` whose ``TASK`` is an instance
of a :class:`~amlvision.tasks.base.Task` subclass; :func:`get_task` imports it on first use, so adding
a task is adding that file (its name must be one of :data:`amlvision.model_dir.TASKS`, the names
``preprocess.json`` may carry). Nothing else is registered by hand.

Task modules import only numpy and the standard library at the top (the scoring image has no
PyTorch); their training hooks import torch inside the function.
"""

from __future__ import annotations

import importlib

from amlvision.model_dir import TASKS
from amlvision.tasks.base import Task

_loaded: dict[str, Task] = {}


def get_task(name: str) -> Task:
    """The task called ``name`` (``classification``, ``multilabel``, ``detection``)."""
    if name in _loaded:
        return _loaded[name]
    if name not in TASKS:
        raise ValueError(f"task must be one of {list(TASKS)}, got {name!r}")
    try:
        module = importlib.import_module(f"{__name__}.{name}")
    except ModuleNotFoundError as exc:
        if exc.name != f"{__name__}.{name}":
            raise
        raise ValueError(f"task {name!r} is not available in this version of amlvision (no {exc.name})") from None
    task = getattr(module, "TASK", None)
    if not isinstance(task, Task) or task.name != name:
        raise TypeError(f"{module.__name__}.TASK must be a Task named {name!r}, got {task!r}")
    _loaded[name] = task
    return task


__all__ = ["Task", "get_task"]
