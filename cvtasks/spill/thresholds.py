"""Choosing the alarm threshold on validation: Youden's J, a fixed false-alarm rate, or a
confidence bound on the false-alarm rate; and the detection metrics at a threshold."""
from __future__ import annotations

import warnings

import numpy as np
from scipy.stats import beta
from sklearn.metrics import roc_curve

import config
from cvtasks.metrics import binary_detection_metrics

POLICIES = ("youden", "fixed_fpr", "fpr_bound")


def false_alarm_bound(false_alarms: np.ndarray, n_normal: int, confidence: float) -> np.ndarray:
    """One-sided Clopper-Pearson upper bound on the false-alarm rate, from ``false_alarms`` out
    of ``n_normal`` normal images: the true rate is below it with probability ``confidence``."""
    k = np.asarray(false_alarms, dtype=float)
    safe = np.minimum(k, n_normal - 1)          # k = n: the bound is 1 (beta would be undefined)
    return np.where(k >= n_normal, 1.0, beta.ppf(confidence, safe + 1, n_normal - safe))


def choose_threshold(y_val: np.ndarray, scores_val: np.ndarray, policy: str,
                     target_fpr: float = config.SpillConfig.target_fpr,
                     confidence: float = config.SpillConfig.fpr_confidence) -> float:
    """The score threshold (flag a spill when score >= threshold), chosen on validation only.

    ``youden``: maximise TPR - FPR (Youden's J). ``fixed_fpr``: the highest TPR whose false-alarm
    rate on validation stays <= ``target_fpr``. ``fpr_bound``: the highest TPR whose false-alarm
    rate stays <= ``target_fpr`` with probability ``confidence`` (Clopper-Pearson upper bound
    from the validation count): a rate measured on a few hundred normal images is itself
    uncertain, and ``fixed_fpr`` spends the whole budget on that estimate. Ties go to the
    higher threshold (fewer alarms).
    """
    y_val = np.asarray(y_val).astype(int)
    if set(np.unique(y_val)) != {0, 1}:
        raise ValueError("choose_threshold needs validation images of both classes")
    fpr, tpr, thr = roc_curve(y_val, scores_val, drop_intermediate=False)
    if policy == "youden":
        gain = tpr - fpr
    elif policy == "fixed_fpr":
        gain = np.where(fpr <= target_fpr, tpr, -1.0)
    elif policy == "fpr_bound":
        n_normal = int((y_val == 0).sum())
        provable = false_alarm_bound(np.round(fpr * n_normal), n_normal, confidence) <= target_fpr
        if not provable.any():
            warnings.warn(f"{n_normal} normal validation images cannot bound the false-alarm rate at "
                          f"{target_fpr:.1%} with {confidence:.0%} confidence; using the strictest threshold "
                          "(no validation false alarm)", stacklevel=2)
            provable = fpr == 0
        gain = np.where(provable, tpr, -1.0)
    else:
        raise ValueError(f"threshold policy {policy!r}: must be one of {', '.join(POLICIES)}")
    best = int(np.flatnonzero(gain == gain.max())[0])   # thresholds decrease: first = highest
    return float(min(thr[best], np.max(scores_val)) if np.isinf(thr[best]) else thr[best])


def detection(y: np.ndarray, scores: np.ndarray, threshold: float, prefix: str) -> dict[str, float]:
    return binary_detection_metrics(y, scores, threshold, prefix=prefix)
