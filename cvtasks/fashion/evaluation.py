"""Measuring the fashion classifier on the 10k test set (read once): the headline metrics with
95 % intervals, every category's precision and recall with its interval (bootstrap over test
images), and the confusions among the garments that look alike."""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from cvtasks.metrics import classification_metrics, fast_macro_f1
from cvtasks.stats import Interval, resamples

LOOK_ALIKES = ("T-shirt/top", "Pullover", "Coat", "Shirt")


def confusion(y: np.ndarray, pred: np.ndarray, k: int) -> np.ndarray:
    return np.bincount(y * k + pred, minlength=k * k).reshape(k, k)


def class_rates(y: np.ndarray, pred: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Every class's precision and recall (0 where a class is never predicted or absent)."""
    cm = confusion(y, pred, k).astype(float)
    tp = np.diag(cm)
    return tp / np.maximum(cm.sum(0), 1), tp / np.maximum(cm.sum(1), 1)


def per_class_intervals(y: np.ndarray, pred: np.ndarray, classes: Sequence[str], *, count: int,
                        seed: int) -> pd.DataFrame:
    """Precision and recall of every class with percentile intervals over resampled test images."""
    k = len(classes)
    precision, recall = class_rates(y, pred, k)
    draws = [class_rates(y[r], pred[r], k) for r in resamples(len(y), count=count, seed=seed)]
    p_lo, p_hi = np.percentile([d[0] for d in draws], [2.5, 97.5], axis=0)
    r_lo, r_hi = np.percentile([d[1] for d in draws], [2.5, 97.5], axis=0)
    return pd.DataFrame({"precision": precision, "precision_low": p_lo, "precision_high": p_hi,
                         "recall": recall, "recall_low": r_lo, "recall_high": r_hi,
                         "support": np.bincount(y, minlength=k)}, index=pd.Index(list(classes), name="class"))


def headline_intervals(y: np.ndarray, probs: np.ndarray, *, count: int, seed: int) -> dict[str, Interval]:
    """Accuracy, macro-F1, top-3 and the lowest class precision and recall (the plan's floor on
    every class), with intervals over resampled test images."""
    pred, k = probs.argmax(1), probs.shape[1]
    in_top3 = (np.argsort(-probs, axis=1)[:, :3] == y[:, None]).any(1)
    stats = {"accuracy": lambda r: float((pred[r] == y[r]).mean()),
             "macro_f1": lambda r: fast_macro_f1(y[r], pred[r], k),
             "top3": lambda r: float(in_top3[r].mean()),
             "min_class_precision": lambda r: float(class_rates(y[r], pred[r], k)[0].min()),
             "min_class_recall": lambda r: float(class_rates(y[r], pred[r], k)[1].min())}
    draws = resamples(len(y), count=count, seed=seed)
    out = {}
    for name, fn in stats.items():
        values = [fn(r) for r in draws]
        out[name] = Interval(fn(np.arange(len(y))), *map(float, np.percentile(values, [2.5, 97.5])))
    return out


def look_alike_confusion(y: np.ndarray, pred: np.ndarray, classes: Sequence[str]) -> pd.DataFrame:
    """Rows: true class among the look-alikes; columns: predicted; the share of each row."""
    idx = [classes.index(c) for c in LOOK_ALIKES]
    cm = confusion(y, pred, len(classes))[np.ix_(idx, idx)].astype(float)
    rows = confusion(y, pred, len(classes)).sum(1)[idx]
    return pd.DataFrame(cm / rows[:, None], index=list(LOOK_ALIKES), columns=list(LOOK_ALIKES)).round(3)


def split_metrics(y: np.ndarray, probs: np.ndarray, prefix: str) -> dict[str, float]:
    return classification_metrics(y, probs, prefix=prefix, top_k=3)


def worst_mistakes(labels: np.ndarray, probs: np.ndarray, k: int, only: int | None = None) -> np.ndarray:
    """Indices of the ``k`` wrong predictions made with the highest confidence (``only``: of that
    true class)."""
    pred = probs.argmax(1)
    wrong = np.flatnonzero((pred != labels) & ((labels == only) if only is not None else True))
    return wrong[np.argsort(-probs[wrong, pred[wrong]])][:k]
