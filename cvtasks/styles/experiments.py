"""The styles experiments: how well each structure and estimator predicts new people as the
sample grows, which prior strength validation picks, and what the models generate.

Rows are split once into train / validation / test. Structures are learned and models fitted
on training rows only (random subsets of them, ``repeats`` times per size, for the curves);
the prior strength and the edge directions are chosen on validation rows; held-out
log-likelihoods are measured on test rows.
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from cvtasks.models.bayesnet import BayesNet, Schema, kl_divergence
from cvtasks.styles import structure
from cvtasks.styles.estimation import METHODS, fit_model


@dataclass(frozen=True)
class RowSplit:
    train: np.ndarray
    val: np.ndarray
    test: np.ndarray


def split_rows(n_rows: int, val_fraction: float, test_fraction: float, seed: int) -> RowSplit:
    order = np.random.default_rng(seed).permutation(n_rows)
    n_test = max(1, int(round(test_fraction * n_rows)))
    n_val = max(1, int(round(val_fraction * n_rows)))
    if n_test + n_val >= n_rows:
        raise ValueError(f"{n_rows} rows cannot give {n_val} validation and {n_test} test rows and still train")
    return RowSplit(np.sort(order[n_test + n_val:]), np.sort(order[n_test:n_test + n_val]), np.sort(order[:n_test]))


def training_sizes(n_train: int, small: int) -> list[int]:
    """Geometric sizes from ``small`` to everything available for training."""
    sizes = np.unique(np.geomspace(min(small, n_train), n_train, num=8).round().astype(int))
    return [int(s) for s in sizes if s >= 1]


def subsets(train: np.ndarray, sizes: Sequence[int], repeats: int, seed: int) -> list[tuple[int, int, np.ndarray]]:
    """``repeats`` random subsets of the training rows per size: (n, repeat, rows)."""
    rng = np.random.default_rng(seed + 1)
    return [(n, rep, rng.permutation(train)[:n]) for n in sizes for rep in range(repeats)]


def learned_skeletons(codes: np.ndarray, schema: Schema, draws: Sequence[tuple[int, int, np.ndarray]], *,
                      ess: float, truth: BayesNet | None = None) -> tuple[list[list[tuple[str, str]]], pd.DataFrame]:
    """The skeleton learned (BDeu forest) from each subset, and one row per subset: its edge
    count and, with the truth known, its SHD to the true skeleton."""
    found, rows = [], []
    for n, rep, rows_ in draws:
        edges = structure.learn_skeleton(codes[rows_], schema, ess)
        found.append(edges)
        rows.append({"n": n, "repeat": rep, "structure": "learned", "method": "bayes", "edges": len(edges),
                     "shd": structure.shd(edges, truth.parents) if truth is not None else np.nan})
    return found, pd.DataFrame(rows)


def heldout_curves(codes: np.ndarray, schema: Schema, draws: Sequence[tuple[int, int, np.ndarray]],
                   skeletons: Sequence[Sequence[tuple[str, str]]], split: RowSplit, *, prior_strength: float,
                   truth: BayesNet | None = None) -> pd.DataFrame:
    """One row per (subset, structure, method): test log-likelihood per style (nats), its mean
    over the test styles MLE can score, the share MLE scores zero, and KL(true || model) when the
    truth is known. Structures: independent, the one learned from that subset (its skeleton,
    directed on the validation rows), the true one."""
    rows, test = [], split.test
    for (n, rep, rows_), edges in zip(draws, skeletons):
        sample = codes[rows_]
        learned = structure.orient(edges, schema, sample, codes[split.val], prior_strength)
        structures = {"independent": None, "learned": learned}
        if truth is not None:
            structures["true"] = truth.parents
        for name, parents in structures.items():
            fitted = {"mle": fit_model(sample, schema, parents, "mle"),
                      "bayes": fit_model(sample, schema, parents, "bayes", prior_strength)}
            seen = np.isfinite(fitted["mle"].log_prob(codes[test]))
            for method, model in fitted.items():
                ll = model.log_prob(codes[test])
                rows.append({"n": n, "repeat": rep, "structure": name, "method": method,
                             "heldout_ll": float(ll.mean()),
                             "heldout_ll_seen": float(ll[seen].mean()) if seen.any() else np.nan,
                             "zero_rate": float((~np.isfinite(ll)).mean()),
                             "kl": kl_divergence(truth, model) if truth is not None else np.nan})
    return pd.DataFrame(rows)


def summarise(frame: pd.DataFrame) -> pd.DataFrame:
    """Mean over resamples and the middle 95 % of resamples (the bands), per (structure,
    method, n); for MLE the means are over the repeats where the value is finite, with the
    share of repeats where it is infinite."""
    def agg(g: pd.DataFrame) -> pd.Series:
        out = {}
        for col in [c for c in ("heldout_ll", "heldout_ll_seen", "kl", "shd", "edges", "zero_rate") if c in g]:
            values = g[col].to_numpy(dtype=float)
            finite = values[np.isfinite(values)]
            out[col] = finite.mean() if len(finite) else np.nan
            out[f"{col}_lo"], out[f"{col}_hi"] = (np.percentile(finite, [2.5, 97.5]) if len(finite)
                                                  else (np.nan, np.nan))
            out[f"{col}_inf_share"] = float(np.isinf(values).mean())
        return pd.Series(out)

    return frame.groupby(["structure", "method", "n"])[list(frame.columns)].apply(agg).reset_index()


def choose_prior(codes: np.ndarray, schema: Schema, split: RowSplit, edges: Sequence[tuple[str, str]],
                 strengths: Sequence[float]) -> tuple[float, dict[str, str | None], pd.DataFrame]:
    """The prior strength (and the edge directions) whose Bayes model, fitted on all training
    rows, gives the validation rows the highest log-likelihood. Returns the choice, the oriented
    structure and the table of every strength tried."""
    train, val = codes[split.train], codes[split.val]
    rows, oriented = [], {}
    for a in strengths:
        parents = structure.orient(edges, schema, train, val, a)
        oriented[a] = parents
        model = fit_model(train, schema, parents, "bayes", a)
        rows.append({"prior_strength": a, "val_ll": float(model.log_prob(val).mean())})
    table = pd.DataFrame(rows)
    best = float(table.loc[table.val_ll.idxmax(), "prior_strength"])
    return best, oriented[best], table


def generation(codes: np.ndarray, schema: Schema, structures: Mapping[str, Mapping[str, str | None] | None], *,
               n_samples: int, prior_strength: float, seed: int, truth: BayesNet | None = None) -> pd.DataFrame:
    """New styles from each structure and estimator: novelty (share no person in the table has),
    distinct share, and validity (the truth gives them a non-zero probability: no hair colour
    on a bald head, no shirt colour under a blazer)."""
    seen = {tuple(r) for r in codes}
    rows = []
    for name, parents in structures.items():
        for method in METHODS:
            gen = fit_model(codes, schema, parents, method, prior_strength).sample(n_samples, np.random.default_rng(seed))
            tuples = [tuple(r) for r in gen]
            rows.append({"structure": name, "method": method,
                         "novelty": float(np.mean([t not in seen for t in tuples])),
                         "distinct": len(set(tuples)) / n_samples,
                         "validity": validity(truth, gen)})
    return pd.DataFrame(rows)


def validity(truth: BayesNet | None, styles: np.ndarray) -> float:
    """Share of ``styles`` the truth allows (NaN when the truth is unknown)."""
    return float(np.isfinite(truth.log_prob(styles)).mean()) if truth is not None else np.nan


def invalid_rate(truth: BayesNet, model: BayesNet, n_samples: int, seed: int) -> float:
    """Share of ``n_samples`` styles sampled from ``model`` that the truth gives probability 0."""
    return 1 - validity(truth, model.sample(n_samples, np.random.default_rng(seed)))


def validity_by_strength(codes: np.ndarray, schema: Schema, parents: Mapping[str, str | None],
                         strengths: Sequence[float], *, n_samples: int, seed: int,
                         truth: BayesNet | None) -> pd.DataFrame:
    """Validity of the styles the Bayes model samples, per prior strength: a strong prior pulls
    every conditional row towards uniform and invents hair colours for bald heads."""
    rows = [{"prior_strength": a, "validity": validity(truth, fit_model(codes, schema, parents, "bayes", a)
                                                       .sample(n_samples, np.random.default_rng(seed)))}
            for a in strengths]
    return pd.DataFrame(rows)
