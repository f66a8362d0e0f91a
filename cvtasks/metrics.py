"""Evaluation metrics shared by the tasks: multi-class classification and binary detection.

Thin wrappers over scikit-learn that return flat, slash-named dicts ready for
reports/<task>/metrics.json and W&B.
"""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
from sklearn import metrics as skm


def classification_metrics(y_true: Sequence[int], probs: np.ndarray, prefix: str = "test",
                           class_names: Sequence[str] | None = None, top_k: int = 3) -> dict[str, float]:
    """Accuracy, balanced accuracy, macro-F1, top-k, and the worst class's precision and recall.

    ``probs``: (n, n_classes) scores (probabilities or logits); predictions are their argmax.
    """
    y_true = np.asarray(y_true)
    probs = np.asarray(probs)
    n_classes = probs.shape[1]
    y_pred = probs.argmax(1)
    labels = np.arange(n_classes)
    precision, recall, f1, _ = skm.precision_recall_fscore_support(
        y_true, y_pred, labels=labels, zero_division=0)
    present = np.isin(labels, y_true)  # classes absent from y_true have undefined recall
    out = {
        f"{prefix}/accuracy": skm.accuracy_score(y_true, y_pred),
        f"{prefix}/balanced_accuracy": skm.balanced_accuracy_score(y_true, y_pred),
        f"{prefix}/macro_f1": float(f1[present].mean()),
        f"{prefix}/min_class_precision": float(precision[present].min()),
        f"{prefix}/min_class_recall": float(recall[present].min()),
    }
    if n_classes > top_k:
        out[f"{prefix}/top{top_k}"] = skm.top_k_accuracy_score(y_true, probs, k=top_k, labels=labels)
    return {k: float(v) for k, v in out.items()}


def fast_macro_f1(y: np.ndarray, pred: np.ndarray, n_classes: int) -> float:
    """Macro-F1 over the classes present in ``y`` (the same value as scikit-learn's with
    labels=present), from one bincount: fast enough for thousands of resamples."""
    cm = np.bincount(y * n_classes + pred, minlength=n_classes * n_classes).reshape(n_classes, n_classes)
    tp = np.diag(cm).astype(float)
    support, predicted = cm.sum(1), cm.sum(0)
    f1 = np.divide(2 * tp, support + predicted, out=np.zeros(n_classes), where=(support + predicted) > 0)
    return float(f1[support > 0].mean())


def per_class_table(y_true: Sequence[int], y_pred: Sequence[int], class_names: Sequence[str]) -> pd.DataFrame:
    """Precision, recall, F1 and support per class, as a table indexed by class name."""
    labels = np.arange(len(class_names))
    p, r, f, s = skm.precision_recall_fscore_support(y_true, y_pred, labels=labels, zero_division=0)
    return pd.DataFrame({"precision": p, "recall": r, "f1": f, "support": s},
                        index=pd.Index(list(class_names), name="class")).round(3)


def binary_detection_metrics(y_true: Sequence[int], scores: Sequence[float], threshold: float,
                             prefix: str = "test") -> dict[str, float]:
    """TPR, TNR, precision, ROC-AUC and PR-AUC of scores where 1 is the positive (anomalous) class."""
    y_true = np.asarray(y_true).astype(int)
    scores = np.asarray(scores, dtype=float)
    pred = scores >= threshold
    pos, neg = y_true == 1, y_true == 0
    tp, tn = int((pred & pos).sum()), int((~pred & neg).sum())
    fp = int((pred & neg).sum())
    return {
        f"{prefix}/tpr": tp / max(int(pos.sum()), 1),
        f"{prefix}/tnr": tn / max(int(neg.sum()), 1),
        f"{prefix}/precision": tp / max(tp + fp, 1),
        f"{prefix}/roc_auc": float(skm.roc_auc_score(y_true, scores)),
        f"{prefix}/pr_auc": float(skm.average_precision_score(y_true, scores)),
    }
