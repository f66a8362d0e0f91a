"""One additive offset on the logit of the class the model recalls worst, chosen on validation.

A classifier trained on balanced classes can still split a look-alike pair unevenly (Shirt
against T-shirt, Pullover, Coat): one side's recall low, the other side's precision high. The
rule (config.FASHION_OFFSET_GRID, fixed before any result): the class with the lowest validation
recall gets the offset from the grid that maximises the validation minimum over classes of
min(precision, recall), kept only when it raises that minimum. The checkpoint carries the
choice, and ``cvtasks.models.fashion_classifier.fold_offset`` adds it to the classifier's bias,
so every consumer (evaluation, ONNX export, the service) runs the same model. Written by hand:
it is a one-parameter grid search.
"""
from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from sklearn.metrics import precision_recall_fscore_support


def per_class(pred: np.ndarray, y: np.ndarray, n_classes: int) -> tuple[np.ndarray, np.ndarray]:
    """Precision and recall of each class (a class never predicted has precision 0)."""
    precision, recall, _, _ = precision_recall_fscore_support(y, pred, labels=np.arange(n_classes), zero_division=0)
    return precision, recall


def worst(pred: np.ndarray, y: np.ndarray, n_classes: int) -> float:
    """The minimum over classes of min(precision, recall)."""
    return float(np.minimum(*per_class(pred, y, n_classes)).min())


def choose(log_probs: np.ndarray, y: np.ndarray, grid: Sequence[float]) -> dict[str, Any]:
    """The rule on validation: ``log_probs`` (n, classes) of the validation images, ``y`` their
    labels. Returns the class, the offset (0 when none raises the minimum) and the minimum of
    min(precision, recall) before and after."""
    y = np.asarray(y)
    n = log_probs.shape[1]
    before = worst(log_probs.argmax(1), y, n)
    cls = int(per_class(log_probs.argmax(1), y, n)[1].argmin())
    shift = np.zeros(n)
    scores = []
    for value in grid:
        shift[cls] = value
        scores.append(worst((log_probs + shift).argmax(1), y, n))
    best = int(np.argmax(scores))   # the first maximum: the smallest offset that reaches it
    offset = float(grid[best]) if scores[best] > before else 0.0
    return {"class": cls, "offset": offset, "val_min_pr_before": before,
            "val_min_pr_after": scores[best] if offset else before}
