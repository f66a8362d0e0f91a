"""Spill detectors measured over training seeds: each seed's threshold chosen on validation,
test ROC-AUC, PR-AUC, TPR and TNR, and their mean over seeds with a 95 % interval.

The interval is a two-level bootstrap: each resample draws the seeds with replacement (the
spread of training) and the test images with replacement, normal and spill images apart (the
spread of the test set), and averages the metric over the drawn seeds.
"""
from __future__ import annotations

import warnings
from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd
from scipy.stats import rankdata

import config
from cvtasks.spill.thresholds import POLICIES, choose_threshold, false_alarm_bound
from cvtasks.stats import Interval, seeds_interval

METRICS = ("roc_auc", "pr_auc", "tpr", "tnr")


def roc_auc(y: np.ndarray, s: np.ndarray) -> float:
    """Mann-Whitney AUC with ties counted half (the same value as scikit-learn's)."""
    ranks = rankdata(s)
    pos = y == 1
    n_pos, n_neg = pos.sum(), len(y) - pos.sum()
    return float((ranks[pos].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


def average_precision(y: np.ndarray, s: np.ndarray) -> float:
    """Mean precision at the rank of each spill (scikit-learn's average precision, ties aside)."""
    order = np.argsort(-s, kind="stable")
    hits = y[order] == 1
    precision = np.cumsum(hits) / np.arange(1, len(y) + 1)
    return float(precision[hits].mean())


def point_metrics(y: np.ndarray, s: np.ndarray, threshold: float) -> dict[str, float]:
    flagged = s >= threshold
    return {"roc_auc": roc_auc(y, s), "pr_auc": average_precision(y, s),
            "tpr": float(flagged[y == 1].mean()), "tnr": float((~flagged[y == 0]).mean())}


def thresholds(y_val: np.ndarray, val_scores: Sequence[np.ndarray], cfg: config.SpillConfig) -> list[float]:
    """Each seed's threshold, chosen on its validation scores by the config's policy."""
    return [choose_threshold(y_val, s, cfg.threshold_policy, cfg.target_fpr, cfg.fpr_confidence) for s in val_scores]


def per_seed(y: np.ndarray, scores: Sequence[np.ndarray], thrs: Sequence[float]) -> pd.DataFrame:
    return pd.DataFrame([point_metrics(y, s, t) for s, t in zip(scores, thrs)])


def seeds_intervals(y: np.ndarray, scores: Sequence[np.ndarray], thrs: Sequence[float], *,
                    resamples: int = config.BOOTSTRAP_RESAMPLES, seed: int,
                    metrics: Sequence[str] = METRICS) -> dict[str, Interval]:
    """Mean over seeds of each metric, with the two-level bootstrap interval."""
    rng = np.random.default_rng(seed)
    normal, spill = np.flatnonzero(y == 0), np.flatnonzero(y == 1)
    scores = [np.asarray(s, dtype=float) for s in scores]
    values = {m: [] for m in metrics}
    for _ in range(resamples):
        rows = np.r_[rng.choice(normal, len(normal)), rng.choice(spill, len(spill))]
        drawn = rng.integers(0, len(scores), len(scores))
        per = [point_metrics(y[rows], scores[k][rows], thrs[k]) for k in drawn]
        for m in metrics:
            values[m].append(np.mean([p[m] for p in per]))
    means = per_seed(y, scores, thrs).mean()
    return {m: Interval(float(means[m]), *map(float, np.percentile(values[m], [2.5, 97.5]))) for m in metrics}


def policy_table(labels: Mapping[str, np.ndarray], scores: Sequence[Mapping[str, np.ndarray]],
                 cfg: config.SpillConfig) -> pd.DataFrame:
    """Each threshold policy on validation scores: TPR and TNR on every part (``labels``: part ->
    labels; ``scores``: one part -> scores mapping per seed), mean over seeds."""
    rows = {}
    for policy in POLICIES:
        label = {"fixed_fpr": f"fixed_fpr ({cfg.target_fpr:.0%})",
                 "fpr_bound": f"fpr_bound ({cfg.target_fpr:.0%} at {cfg.fpr_confidence:.0%})"}.get(policy, policy)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")   # a quick run's validation is too small to bound the rate
            thrs = [choose_threshold(labels["val"], s["val"], policy, cfg.target_fpr, cfg.fpr_confidence)
                    for s in scores]
        row = {}
        for part, y in labels.items():
            m = per_seed(y, [s[part] for s in scores], thrs).mean()
            row.update({f"{part}/tpr": m["tpr"], f"{part}/tnr": m["tnr"]})
        rows[label] = row
    return pd.DataFrame(rows).T.round(3)


def worst_seed_tnr(prefix: str, y: np.ndarray, scores: Sequence[np.ndarray],
                   thrs: Sequence[float]) -> dict[str, float]:
    """The seed with the most false alarms, and a one-sided 95 % Clopper-Pearson lower bound on
    its TNR: when no seed flags any normal image, the bootstrap interval collapses to 1."""
    normal = y == 0
    worst = max(int(np.sum(s[normal] >= t)) for s, t in zip(scores, thrs))
    low = 1 - float(false_alarm_bound(worst, int(normal.sum()), 0.95))
    return {f"{prefix}/worst_seed_false_alarms": worst, f"{prefix}/n_normal": int(normal.sum()),
            f"{prefix}/worst_seed_tnr_low": low}


def tnr_by_condition(score: str, conditions: np.ndarray, y: np.ndarray, scores: Sequence[np.ndarray],
                     thrs: Sequence[float], lighting: str) -> list[dict]:
    """One row per lighting condition: the TNR of its normal images, mean over seeds with the
    seeds' interval (``lighting`` names the set the conditions come from)."""
    rows = []
    for c in np.unique(conditions):
        normal = (conditions == c) & (y == 0)
        if not normal.any():
            continue
        iv = seeds_interval([float(np.mean(s[normal] < t)) for s, t in zip(scores, thrs)])
        rows.append({"score": score, "condition": str(c), "lighting": lighting, "n_normal": int(normal.sum()),
                     "tnr": iv.value, "tnr_low": iv.low, "tnr_high": iv.high})
    return rows


def flatten(prefix: str, intervals: Mapping[str, Interval], n_seeds: int) -> dict[str, float]:
    """``<prefix>test/<metric>_mean`` with ``_ci_low`` / ``_ci_high``, and the seed count."""
    out = {f"{prefix}seeds": n_seeds}
    for m, iv in intervals.items():
        out.update(iv.items(f"{prefix}test/{m}_mean"))
    return out


def summary_table(intervals: Mapping[str, Mapping[str, Interval]]) -> pd.DataFrame:
    """One row per detector: each metric as 'mean [low, high]'."""
    return pd.DataFrame({name: {m: str(iv) for m, iv in ivs.items()} for name, ivs in intervals.items()}).T
