"""The five tasks by name: each task's module and class, imported on demand (a task's stack is
heavy: the CLI, the README writer and the notebook checks name tasks without loading them)."""
from __future__ import annotations

import importlib

TASK_CLASSES = {
    "brands": ("cvtasks.brands", "BrandsTask"),
    "styles": ("cvtasks.styles", "StylesTask"),
    "spill": ("cvtasks.spill", "SpillTask"),
    "search": ("cvtasks.search", "SearchTask"),
    "fashion": ("cvtasks.fashion", "FashionTask"),
}


def task_class(name: str):
    module, attr = TASK_CLASSES[name]
    return getattr(importlib.import_module(module), attr)
