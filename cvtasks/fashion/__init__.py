"""Fashion_Classification.ipynb: product category classification on Fashion-MNIST, its
hyperparameter study, and the model the service serves. ``FashionTask`` runs the stages.

``FashionTask`` is imported on first use, so that training alone (``cvtasks.fashion.training``,
``python -m cvtasks train fashion``, on a machine with only torch) does not load the tracking,
study and service modules."""
from __future__ import annotations

__all__ = ["FashionTask"]


def __getattr__(name: str):
    if name == "FashionTask":
        # lazily: `train fashion` on a bare GPU machine needs only torch, not the task's stack
        from cvtasks.fashion.task import FashionTask

        return FashionTask
    raise AttributeError(f"module 'cvtasks.fashion' has no attribute {name!r}")
