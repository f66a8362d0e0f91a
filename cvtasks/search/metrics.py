"""Search metrics, per query, with intervals by bootstrap over queries.

Ranking (every gallery image scored for a query): NDCG@10 with graded gains (the votes'
target; pairs nobody voted on count 0), Recall@1/5/10 and MRR against a strict relevance (the
votes' top grade: target >= ``strict``), and Kendall's tau-b between the scores and the gains,
the statistic the field uses to compare a scorer with human judgement. Pairs (the voted pairs
of the queries): MAE, RMSE and R2 of the predicted score against the target.
"""
from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
import pandas as pd
from scipy.stats import kendalltau

from cvtasks.stats import Interval, bootstrap

KS = (1, 5, 10)


def _dcg(gains_sorted: np.ndarray, k: int) -> np.ndarray:
    discount = 1 / np.log2(np.arange(2, k + 2))
    return (gains_sorted[:, :k] * discount[: gains_sorted.shape[1]][:k]).sum(1)


def per_query(scores: np.ndarray, gains: np.ndarray, strict: float, k_ndcg: int = 10) -> pd.DataFrame:
    """One row per query: ndcg@10, recall@1/5/10, mrr (strict relevance) and kendall_tau. Ties in
    the scores are broken by gallery order (scores are continuous, ties are rare)."""
    order = np.argsort(-scores, axis=1, kind="stable")
    ranked = np.take_along_axis(gains, order, axis=1)
    ideal = _dcg(-np.sort(-gains, axis=1), k_ndcg)
    ndcg = np.divide(_dcg(ranked, k_ndcg), ideal, out=np.zeros(len(gains)), where=ideal > 0)
    relevant = ranked >= strict
    n_relevant = relevant.sum(1)
    out = {f"ndcg@{k_ndcg}": ndcg}
    for k in KS:
        out[f"recall@{k}"] = np.divide(relevant[:, :k].sum(1), n_relevant, out=np.full(len(gains), np.nan),
                                       where=n_relevant > 0)
    first = np.where(relevant.any(1), relevant.argmax(1) + 1, 0)
    out["mrr"] = np.where(first > 0, 1 / np.maximum(first, 1), np.nan)
    out["mrr"][n_relevant == 0] = np.nan
    out["kendall_tau"] = np.array([kendalltau(s, g, variant="b").statistic if g.std() > 0 else np.nan
                                   for s, g in zip(scores, gains)])
    return pd.DataFrame(out)


def ranking_intervals(per: pd.DataFrame, *, resamples: int, seed: int) -> dict[str, Interval]:
    """Mean of each per-query metric with its bootstrap interval over queries (NaN rows, e.g. a
    query with no strict match for recall, are left out of that metric)."""
    out = {}
    for col in per.columns:
        values = per[col].dropna().to_numpy()
        if len(values):
            out[col] = bootstrap(lambda r, v=values: float(v[r].mean()), len(values), count=resamples, seed=seed)
    return out


def paired_delta(a: pd.DataFrame, b: pd.DataFrame, col: str, *, resamples: int, seed: int) -> Interval:
    """Mean of a - b per query (the same queries), with the paired bootstrap interval."""
    both = (a[col] - b[col]).dropna().to_numpy()
    return bootstrap(lambda r: float(both[r].mean()), len(both), count=resamples, seed=seed)


def r2(pred: np.ndarray, target: np.ndarray) -> float:
    """The share of the target's variance that the prediction explains."""
    return float(1 - ((target - pred) ** 2).sum() / max(((target - target.mean()) ** 2).sum(), 1e-12))


def pair_intervals(pred: np.ndarray, target: np.ndarray, query: np.ndarray, *, resamples: int,
                   seed: int) -> dict[str, Interval]:
    """MAE, RMSE and R2 of the voted pairs, with intervals from resampling whole queries."""
    def stat(fn: Callable[[np.ndarray, np.ndarray], float]):
        return lambda rows: fn(pred[rows], target[rows])

    fns = {"mae": lambda p, t: float(np.abs(p - t).mean()), "rmse": lambda p, t: float(np.sqrt(((p - t) ** 2).mean())),
           "r2": r2}
    return {name: bootstrap(stat(fn), len(pred), query, count=resamples, seed=seed) for name, fn in fns.items()}


def flatten(prefix: str, intervals: dict[str, Interval], keys: Sequence[str] | None = None) -> dict[str, float]:
    out: dict[str, float] = {}
    for k, iv in intervals.items():
        if keys is None or k in keys:
            out.update(iv.items(f"{prefix}{k}"))
    return out
