"""Scores a user can read: a 0..1 mapping of the ranker's score fitted on validation (isotonic
regression onto the votes' target: the calibrated score is the expected target at that score),
its reliability on test, and the "no good match" threshold on the best calibrated score."""
from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np
import pandas as pd
from sklearn.isotonic import IsotonicRegression
from sklearn.metrics import roc_auc_score

from cvtasks.search.data import Gallery
from cvtasks.stats import bootstrap


def fit_calibrator(scores: np.ndarray, target: np.ndarray) -> IsotonicRegression:
    return IsotonicRegression(y_min=0.0, y_max=1.0, out_of_bounds="clip").fit(scores, target)


def min_max(scores: np.ndarray, reference: np.ndarray) -> np.ndarray:
    """Scores scaled to 0..1 by the range of ``reference`` (validation): the uncalibrated baseline."""
    return np.clip((scores - reference.min()) / (np.ptp(reference) + 1e-9), 0, 1)


def voted_pairs(g: Gallery, scores: np.ndarray) -> tuple[pd.DataFrame, np.ndarray]:
    """The voted pairs of a gallery's new queries, and the ranker's scores of them (``scores``:
    every query of the gallery against every drawing)."""
    new = np.flatnonzero(g.queries.kind == "new")
    pairs = g.pairs(g.queries.iloc[new])
    return pairs, scores[new[pairs.query_row.to_numpy()], pairs.image_row.to_numpy()]


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


def nomatch_statistics(raw: np.ndarray, calibrated: np.ndarray,
                       text_evidence: dict[str, np.ndarray] | None = None) -> dict[str, np.ndarray]:
    """Per query, how clearly something in the gallery fits (low: nothing does). From the ranked
    list: the best calibrated score; the best raw score standardised over the gallery; the gap
    between the two best. From the query side, ``text_evidence`` (``text_evidence`` below)."""
    top2 = np.sort(raw, axis=1)[:, -2:]
    return {"best": calibrated.max(1),
            "standardised best": (raw.max(1) - raw.mean(1)) / (raw.std(1) + 1e-9),
            "gap to the second": top2[:, 1] - top2[:, 0], **(text_evidence or {})}


@dataclass(frozen=True)
class GalleryText:
    """The gallery's own text (its drawings' titles and descriptions) as unit sentence vectors,
    and, per k, the k-NN similarities of the calibration queries: validation queries of
    categories held out of the validation gallery, i.e. queries known to have nothing to find."""

    vectors: np.ndarray                  # (texts, dim), unit length
    owners: np.ndarray                   # the drawing each text describes
    null: dict[int, np.ndarray]          # k -> sorted k-NN similarities of the calibration queries


def _unit(x: np.ndarray) -> np.ndarray:
    return x / (np.linalg.norm(x, axis=1, keepdims=True) + 1e-12)


def knn_similarity(queries: np.ndarray, texts: GalleryText, ks: tuple[int, ...],
                   own: np.ndarray | None = None) -> dict[int, np.ndarray]:
    """Per k, each query's mean cosine to its k nearest gallery texts. ``own`` (per query, a
    drawing or ""): that drawing's own texts are left out, so that a gallery query scored on
    its way to the threshold is not found through its own title (a user's words are not the title)."""
    sim = _unit(queries) @ texts.vectors.T
    if own is not None:
        sim[(own[:, None] == texts.owners[None, :]) & (own[:, None] != "")] = -np.inf
    ranked = -np.sort(-sim, axis=1)
    return {k: ranked[:, :min(k, ranked.shape[1])].mean(1) for k in ks}


def gallery_text(texts: np.ndarray, owners: np.ndarray, null_queries: np.ndarray, ks: tuple[int, ...]) -> GalleryText:
    """The gallery text, with the null k-NN similarities of queries known to have nothing to find."""
    base = GalleryText(_unit(texts), np.asarray(owners), {})
    return replace(base, null={k: np.sort(v) for k, v in knn_similarity(null_queries, base, ks).items()})


def text_evidence(queries: np.ndarray, texts: GalleryText, own: np.ndarray | None = None) -> dict[str, np.ndarray]:
    """Per k, 1 - the conformal p-value of "nothing fits": the share of the calibration queries
    (which have nothing to find) whose k-NN similarity lies below this query's, (#below + 1) / (n + 1)
    with ties counted below. Low: the query is no closer to the gallery's text than queries that
    find nothing; a threshold on it is a threshold on the similarity, read as a rank."""
    out = {}
    for k, s in knn_similarity(queries, texts, tuple(texts.null), own).items():
        below = np.searchsorted(texts.null[k], s, side="right")
        out[f"gallery text, k={k}"] = (below + 1) / (len(texts.null[k]) + 1)
    return out


@dataclass(frozen=True)
class NomatchSplit:
    """One gallery's queries with something to find or nothing: each "no good match" statistic
    per query, which queries have nothing, and the drawing each query is about (resampled together)."""

    statistics: dict[str, np.ndarray]
    absent: np.ndarray
    drawings: np.ndarray


def nomatch_split(queries: pd.DataFrame, vectors: np.ndarray, raw: np.ndarray, calibrator: IsotonicRegression,
                  null: np.ndarray, ks: tuple[int, ...]) -> tuple[NomatchSplit, GalleryText | None]:
    """A gallery's NomatchSplit from its queries (their sentence ``vectors`` and ``raw`` ranker
    scores against the gallery) and the gallery's own text (its drawings' titles) with its null
    from the calibration queries ``null`` (None when there are none)."""
    keep = queries.kind.isin(["new", "nomatch"]).to_numpy()
    kept, raw = queries[keep], raw[keep]
    calibrated = calibrator.predict(raw.ravel()).reshape(raw.shape)
    texts, evidence = None, None
    if len(null):
        own = (queries.image != "").to_numpy()
        texts = gallery_text(vectors[own], queries.image[own].to_numpy(), null, ks)
        evidence = text_evidence(vectors[keep], texts, kept.image.to_numpy())
    split = NomatchSplit(nomatch_statistics(raw, calibrated, evidence), (kept.kind == "nomatch").to_numpy(),
                         kept.query_id.str.rsplit("#", n=1).str[0].to_numpy())
    return split, texts


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


def nomatch_quality(stat: np.ndarray, no_match: np.ndarray, threshold: float, prevalence: float,
                    groups: np.ndarray | None = None, *, count: int = 0, seed: int = 0) -> dict[str, float]:
    """Precision at ``prevalence`` and recall of the "no good match" answers, and how well the
    statistic separates the two kinds of query at all (ROC-AUC, 0.5: not at all); with ``count``
    resamples, precision's and recall's 95 % intervals (bootstrap over ``groups``: the drawings
    the queries describe)."""
    answered = stat < threshold
    out = {"precision": _precision(answered, no_match, prevalence) if answered.any() else float("nan"),
           "precision_as_sampled": float(no_match[answered].mean()) if answered.any() else float("nan"),
           "recall": float(answered[no_match].mean()) if no_match.any() else float("nan"),
           "roc_auc": float(roc_auc_score(no_match, -stat)) if 0 < no_match.sum() < len(no_match) else float("nan"),
           "answered": int(answered.sum()), "no_match_queries": int(no_match.sum())}
    if count and answered.any() and no_match.any():
        def precision(rows: np.ndarray) -> float:
            return _precision(answered[rows], no_match[rows], prevalence) if answered[rows].any() else np.nan

        def recall(rows: np.ndarray) -> float:
            return float(answered[rows][no_match[rows]].mean()) if no_match[rows].any() else np.nan

        for name, statistic in (("precision", precision), ("recall", recall)):
            interval = bootstrap(statistic, len(stat), groups, count=count, seed=seed)
            out.update({f"{name}_ci_low": interval.low, f"{name}_ci_high": interval.high})
    return out
