"""Scores a user can read: a 0..1 mapping of the ranker's score fitted on validation (isotonic
regression onto the votes' target: the calibrated score is the expected target at that score),
its reliability on test, and the "no good match" threshold on the best calibrated score."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from sklearn.isotonic import IsotonicRegression


def fit_calibrator(scores: np.ndarray, target: np.ndarray) -> IsotonicRegression:
    return IsotonicRegression(y_min=0.0, y_max=1.0, out_of_bounds="clip").fit(scores, target)


def reliability(pred: np.ndarray, target: np.ndarray, bins: int) -> pd.DataFrame:
    """Per bin of the calibrated score: its mean, the mean target and the count."""
    edges = np.linspace(0, 1, bins + 1)
    which = np.clip(np.digitize(pred, edges[1:-1]), 0, bins - 1)
    rows = [{"bin": f"{edges[b]:.1f}-{edges[b + 1]:.1f}", "predicted": pred[which == b].mean(),
             "observed": target[which == b].mean(), "pairs": int((which == b).sum())}
            for b in range(bins) if (which == b).any()]
    return pd.DataFrame(rows)


def ece(pred: np.ndarray, target: np.ndarray, bins: int) -> float:
    """Expected calibration error: the count-weighted mean |predicted - observed| over the bins."""
    table = reliability(pred, target, bins)
    return float((table.pairs * (table.predicted - table.observed).abs()).sum() / table.pairs.sum())


@dataclass(frozen=True)
class NoMatch:
    threshold: float      # answer "no good match" when the statistic is below it
    precision: float      # on the data it was chosen on
    recall: float
    statistic: str = "best"


def nomatch_statistics(raw: np.ndarray, calibrated: np.ndarray) -> dict[str, np.ndarray]:
    """Per query, how clearly the best drawing stands out (low: nothing fits): the best calibrated
    score; the best raw score standardised over the gallery; the gap between the two best."""
    top2 = np.sort(raw, axis=1)[:, -2:]
    return {"best": calibrated.max(1),
            "standardised best": (raw.max(1) - raw.mean(1)) / (raw.std(1) + 1e-9),
            "gap to the second": top2[:, 1] - top2[:, 0]}


def choose_statistic(stats: dict[str, np.ndarray], no_match: np.ndarray, precision: float,
                     prevalence: float) -> NoMatch:
    """The statistic and threshold whose "no good match" answers reach ``precision`` (at the
    deployment ``prevalence``) and catch the most queries that deserve them (on validation)."""
    choices = [(name, choose_nomatch(values, no_match, precision, prevalence)) for name, values in stats.items()]
    name, best = max(choices, key=lambda c: c[1].recall)
    return NoMatch(best.threshold, best.precision, best.recall, name)


def _precision(answered: np.ndarray, no_match: np.ndarray, prevalence: float) -> float:
    """Precision of the "no good match" answers had ``prevalence`` of the queries nothing to find
    (the rates are measured within each kind of query, then weighted: a precision measured on a
    sample with another mix would not carry over)."""
    hit = answered[no_match].mean() if no_match.any() else 0.0
    false = answered[~no_match].mean() if (~no_match).any() else 0.0
    denominator = prevalence * hit + (1 - prevalence) * false
    return float(prevalence * hit / denominator) if denominator > 0 else float("nan")


def choose_nomatch(stat: np.ndarray, no_match: np.ndarray, precision: float, prevalence: float) -> NoMatch:
    """The highest threshold on the statistic whose "no good match" answers are right at least
    ``precision`` of the time at ``prevalence``; the highest, because it answers "no good match"
    for the most queries that deserve it."""
    candidates = np.unique(stat)
    chosen = NoMatch(float(candidates.min()), 1.0, 0.0)
    for t in candidates:
        answered = stat < t
        if not answered.any():
            continue
        p = _precision(answered, no_match, prevalence)
        r = float(answered[no_match].mean()) if no_match.any() else 0.0
        if p >= precision and t >= chosen.threshold:
            chosen = NoMatch(float(t), p, r)
    return chosen


def nomatch_quality(stat: np.ndarray, no_match: np.ndarray, threshold: float, prevalence: float) -> dict[str, float]:
    """Precision at ``prevalence`` and recall of the "no good match" answers, and how well the
    statistic separates the two kinds of query at all (ROC-AUC, 0.5: not at all)."""
    from sklearn.metrics import roc_auc_score

    answered = stat < threshold
    return {"precision": _precision(answered, no_match, prevalence) if answered.any() else float("nan"),
            "precision_as_sampled": float(no_match[answered].mean()) if answered.any() else float("nan"),
            "recall": float(answered[no_match].mean()) if no_match.any() else float("nan"),
            "roc_auc": float(roc_auc_score(no_match, -stat)) if 0 < no_match.sum() < len(no_match) else float("nan"),
            "answered": int(answered.sum()), "no_match_queries": int(no_match.sum())}
