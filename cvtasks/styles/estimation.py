"""Estimating a style distribution from a table: MLE and the Bayesian (Dirichlet) estimate of
each attribute, conditionals, the law of total probability and Bayes' rule, and a style model
(a cvtasks.models.bayesnet.BayesNet) fitted for a given structure."""
from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pandas as pd
from scipy import stats
from scipy.special import gammaln
from sklearn.metrics import mutual_info_score

from cvtasks.models.bayesnet import BayesNet, Schema, encode

METHODS = ("mle", "bayes")


# --- one categorical distribution --------------------------------------------------------------
def counts(codes: np.ndarray, k: int) -> np.ndarray:
    return np.bincount(np.asarray(codes, dtype=np.int64), minlength=k).astype(float)


def mle(c: np.ndarray) -> np.ndarray:
    """Maximum likelihood: relative frequencies. Options never seen get probability zero."""
    c = np.asarray(c, float)
    if c.sum() <= 0:
        raise ValueError("MLE of a distribution needs at least one observation")
    return c / c.sum()


def dirichlet_posterior(c: np.ndarray, prior_strength: float) -> np.ndarray:
    """Concentrations of the posterior Dirichlet(c + a) under a symmetric Dirichlet(a) prior."""
    if prior_strength <= 0:
        raise ValueError(f"prior_strength = {prior_strength}: must be > 0")
    return np.asarray(c, float) + prior_strength


def posterior_mean(c: np.ndarray, prior_strength: float) -> np.ndarray:
    """E[p | data] = (c_i + a) / (N + K a): additive smoothing (Laplace for a = 1). It is also
    the posterior predictive probability of the next observation."""
    post = dirichlet_posterior(c, prior_strength)
    return post / post.sum()


def posterior_predictive_logprob(c: np.ndarray, new: np.ndarray, prior_strength: float) -> float:
    """log P(a particular sequence with counts ``new`` | data), integrating p out (Polya urn:
    each new observation updates the counts). For one observation it equals log posterior_mean."""
    post, new = dirichlet_posterior(c, prior_strength), np.asarray(new, float)
    return float(gammaln(post.sum()) - gammaln(post.sum() + new.sum())
                 + (gammaln(post + new) - gammaln(post)).sum())


def posterior_interval(c: np.ndarray, prior_strength: float, level: float = 0.9) -> tuple[np.ndarray, np.ndarray]:
    """Equal-tailed credible interval of each p_i: its marginal is Beta(a_i, A - a_i)."""
    post = dirichlet_posterior(c, prior_strength)
    tail = (1 - level) / 2
    return (stats.beta.ppf(tail, post, post.sum() - post), stats.beta.ppf(1 - tail, post, post.sum() - post))


def estimate(c: np.ndarray, method: str, prior_strength: float) -> np.ndarray:
    if method == "mle":
        return mle(c)
    if method == "bayes":
        return posterior_mean(c, prior_strength)
    raise ValueError(f"method {method!r}: one of {METHODS}")


# --- conditionals, total probability, Bayes' rule -----------------------------------------------
def conditional(child: np.ndarray, parent: np.ndarray, k_parent: int, k_child: int,
                method: str = "mle", prior_strength: float = 1.0) -> np.ndarray:
    """P(child | parent) as a (k_parent, k_child) table, one estimate per parent option.
    MLE rows of parent options never seen are undefined; they are left uniform, which never
    matters because the MLE gives those parent options probability zero."""
    joint = np.zeros((k_parent, k_child))
    np.add.at(joint, (np.asarray(parent), np.asarray(child)), 1.0)
    if method == "mle":
        rows = joint.sum(1, keepdims=True)
        return np.where(rows > 0, joint / np.maximum(rows, 1), 1.0 / k_child)
    return np.stack([estimate(row, method, prior_strength) for row in joint])


def total_probability(cond: np.ndarray, parent: np.ndarray) -> np.ndarray:
    """P(child) = sum_p P(child | p) P(p)."""
    return np.asarray(parent) @ np.asarray(cond)


def bayes_rule(cond: np.ndarray, parent: np.ndarray) -> np.ndarray:
    """P(parent | child) = P(child | parent) P(parent) / P(child), shape (k_child, k_parent);
    rows of child options with probability zero are NaN (undefined)."""
    joint = np.asarray(parent)[:, None] * np.asarray(cond)   # (k_parent, k_child)
    child = joint.sum(0)
    with np.errstate(invalid="ignore", divide="ignore"):
        return (joint / child).T


# --- models ---------------------------------------------------------------------------------------
def fit_model(codes: np.ndarray, schema: Schema, parents: Mapping[str, str | None] | None = None,
              method: str = "mle", prior_strength: float = 1.0) -> BayesNet:
    """A style model estimated from integer codes; ``parents=None`` is the independent model."""
    schema = {a: tuple(o) for a, o in schema.items()}
    parents = {a: (parents or {}).get(a) for a in schema}
    col = {a: j for j, a in enumerate(schema)}
    tables = {}
    for attr, options in schema.items():
        parent = parents[attr]
        if parent is None:
            tables[attr] = estimate(counts(codes[:, col[attr]], len(options)), method, prior_strength)
        else:
            tables[attr] = conditional(codes[:, col[attr]], codes[:, col[parent]], len(schema[parent]),
                                       len(options), method, prior_strength)
    return BayesNet(schema, parents, tables)


def style_probability(model: BayesNet, style: Mapping[str, str]) -> float:
    """P(one complete style) under a model."""
    return float(np.exp(model.log_prob(encode(pd.DataFrame([style]), model.schema))[0]))


def dependency_table(codes: np.ndarray, schema: Schema) -> pd.DataFrame:
    """Mutual information (nats) between every pair of attributes: where the dependencies are."""
    attrs = list(schema)
    mi = np.array([[mutual_info_score(codes[:, i], codes[:, j]) for j in range(len(attrs))] for i in range(len(attrs))])
    return pd.DataFrame(mi, index=attrs, columns=attrs)


def total_probability_check(codes: np.ndarray, schema: Schema, parent: str, child: str) -> pd.DataFrame:
    """P(child) directly from the counts against sum_p P(child | p) P(p), both by MLE."""
    col = {a: j for j, a in enumerate(schema)}
    kp, kc = len(schema[parent]), len(schema[child])
    p_parent = mle(counts(codes[:, col[parent]], kp))
    cond = conditional(codes[:, col[child]], codes[:, col[parent]], kp, kc)
    return pd.DataFrame({"direct": mle(counts(codes[:, col[child]], kc)),
                         "total_probability": total_probability(cond, p_parent)}, index=list(schema[child]))
