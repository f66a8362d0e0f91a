"""Style generator: MLE and Bayesian (Dirichlet) estimates of style attributes, conditionals,
the law of total probability and Bayes' rule, the independent model against the model with
dependencies, sampling new styles, and the experiments that compare them.

A style model is a ``cvtasks.bayesnet.BayesNet``; ``fit_model`` estimates one from a table.
``run(cfg)`` does the whole task (styles and avatars) and returns flat metrics.
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd
from scipy import stats
from scipy.special import gammaln
from sklearn.metrics import mutual_info_score

from cvtasks.bayesnet import BayesNet, Schema, encode, kl_divergence

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


def estimate(c: np.ndarray, method: str, prior_strength: float = 1.0) -> np.ndarray:
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
def parse_dependencies(dependencies: Sequence[str], schema: Schema) -> dict[str, str | None]:
    """``("hairstyle->hair_colour", ...)`` -> {attribute: parent or None}."""
    parents: dict[str, str | None] = {a: None for a in schema}
    for dep in dependencies:
        parent, sep, child = (s.strip() for s in dep.partition("->"))
        if not sep or parent not in schema or child not in schema:
            raise ValueError(f"dependency {dep!r}: expected 'parent->child' over the attributes {list(schema)}")
        if parents[child] is not None:
            raise ValueError(f"{child!r} has two parents; each attribute may have at most one")
        parents[child] = parent
    return parents


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


# --- experiments --------------------------------------------------------------------------------------
def _split(n_rows: int, test_fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    order = np.random.default_rng(seed).permutation(n_rows)
    n_test = max(1, int(round(test_fraction * n_rows)))
    return order[n_test:], order[:n_test]


def training_sizes(n_train: int, small: int) -> list[int]:
    """Geometric sizes from ``small`` to everything available for training."""
    sizes = np.unique(np.geomspace(small, n_train, num=8).round().astype(int))
    return [int(s) for s in sizes if s >= 1]


def heldout_experiment(codes: np.ndarray, schema: Schema, parents: Mapping[str, str | None], *,
                       sizes: Sequence[int], prior_strengths: Sequence[float], repeats: int,
                       test_fraction: float, seed: int, truth: BayesNet | None = None) -> pd.DataFrame:
    """MLE against Bayes as the training sample grows. One row per (n, repeat, estimator, model):
    held-out log-likelihood per style (nats), its value on the held-out styles MLE can score,
    the share MLE scores zero, and KL(true || estimate) when the truth is known."""
    train, test = _split(len(codes), test_fraction, seed)
    rng = np.random.default_rng(seed + 1)
    rows = []
    for n in sizes:
        for rep in range(repeats):
            sample = codes[rng.permutation(train)[:n]]
            for model_name, model_parents in (("independent", None), ("dependent", parents)):
                fitted = {("mle", 0.0): fit_model(sample, schema, model_parents, "mle")}
                fitted.update({("bayes", a): fit_model(sample, schema, model_parents, "bayes", a)
                               for a in prior_strengths})
                mle_ll = fitted[("mle", 0.0)].log_prob(codes[test])
                seen = np.isfinite(mle_ll)
                for (method, strength), model in fitted.items():
                    ll = model.log_prob(codes[test])
                    rows.append({"n": n, "repeat": rep, "model": model_name, "method": method,
                                 "prior_strength": strength, "heldout_ll": float(ll.mean()),
                                 "heldout_ll_seen": float(ll[seen].mean()) if seen.any() else np.nan,
                                 "zero_rate": float((~np.isfinite(ll)).mean()),
                                 "kl": kl_divergence(truth, model) if truth is not None else np.nan})
    return pd.DataFrame(rows)


def summarise_heldout(frame: pd.DataFrame) -> pd.DataFrame:
    """Means over repeats; for MLE a mean over repeats with finite values, plus the share of
    repeats where the held-out log-likelihood or the KL is infinite."""
    def agg(g: pd.DataFrame) -> pd.Series:
        out = {}
        for col in ("heldout_ll", "heldout_ll_seen", "kl"):
            finite = g[col][np.isfinite(g[col])]
            out[col] = finite.mean() if len(finite) else np.nan
            out[f"{col}_inf_share"] = float(np.isinf(g[col]).mean())
        out["zero_rate"] = g["zero_rate"].mean()
        return pd.Series(out)

    return (frame.groupby(["model", "method", "prior_strength", "n"])[list(frame.columns)]
            .apply(agg).reset_index())


def generation_experiment(codes: np.ndarray, schema: Schema, parents: Mapping[str, str | None], *,
                          n_samples: int, prior_strength: float, seed: int,
                          truth: BayesNet | None = None) -> pd.DataFrame:
    """Sample new styles from each fitted model: novelty (share of generated styles that no
    person in the data has), distinct share, and validity (the truth gives the style a non-zero
    probability: no hair colour on a bald head, no shirt colour under a blazer)."""
    seen = {tuple(r) for r in codes}
    rows = []
    for model_name, model_parents in (("independent", None), ("dependent", parents)):
        for method in METHODS:
            model = fit_model(codes, schema, model_parents, method, prior_strength)
            gen = model.sample(n_samples, np.random.default_rng(seed))
            tuples = [tuple(r) for r in gen]
            rows.append({"model": model_name, "method": method,
                         "novelty": float(np.mean([t not in seen for t in tuples])),
                         "distinct": len(set(tuples)) / n_samples,
                         "validity": float(np.isfinite(truth.log_prob(gen)).mean()) if truth is not None else np.nan})
    return pd.DataFrame(rows)


def total_probability_check(codes: np.ndarray, schema: Schema, parent: str, child: str) -> pd.DataFrame:
    """P(child) directly from the counts against sum_p P(child | p) P(p), both by MLE."""
    col = {a: j for j, a in enumerate(schema)}
    kp, kc = len(schema[parent]), len(schema[child])
    p_parent = mle(counts(codes[:, col[parent]], kp))
    cond = conditional(codes[:, col[child]], codes[:, col[parent]], kp, kc)
    return pd.DataFrame({"direct": mle(counts(codes[:, col[child]], kc)),
                         "total_probability": total_probability(cond, p_parent)}, index=list(schema[child]))


# --- the task end to end ---------------------------------------------------------------------------
def style_metrics(summary: pd.DataFrame, generation: pd.DataFrame, small_n: int, full_n: int,
                  prior_strength: float) -> dict[str, float]:
    """Flat metrics of the dependent model at a small and the full training size."""
    out: dict[str, float] = {}
    dep = summary[summary.model == "dependent"]
    for n, tag in ((small_n, "small"), (full_n, "full")):
        out[f"styles/n_{tag}"] = n
        for method, strength in (("mle", 0.0), ("bayes", prior_strength)):
            row = dep[(dep.method == method) & (dep.prior_strength == strength) & (dep.n == n)].iloc[0]
            prefix = f"styles/{tag}/{method}"
            out[f"{prefix}/zero_rate"] = row.zero_rate
            out[f"{prefix}/heldout_ll_inf_share"] = row.heldout_ll_inf_share
            out[f"{prefix}/kl_inf_share"] = row.kl_inf_share
            for col in ("heldout_ll", "heldout_ll_seen", "kl"):
                if np.isfinite(row[col]):   # mean over the repeats where it is finite
                    out[f"{prefix}/{col}"] = row[col]
    for r in generation.itertuples():
        for col in ("novelty", "distinct", "validity"):
            if np.isfinite(getattr(r, col)):
                out[f"styles/generate/{r.model}_{r.method}/{col}"] = getattr(r, col)
    return {k: float(v) for k, v in out.items()}


def run(cfg) -> dict[str, float]:
    """Styles and avatars end to end; returns flat metrics (the CLI writes metrics.json)."""
    from cvtasks import avatars
    from cvtasks.data.styles import ground_truth, load_styles

    data = load_styles(cfg)
    codes = encode(data.table, data.schema)
    parents = parse_dependencies(cfg.dependencies, data.schema)
    truth = ground_truth() if cfg.styles_csv is None else None
    n_train = len(_split(len(codes), cfg.test_fraction, cfg.seed)[0])
    sizes = training_sizes(n_train, cfg.small_n)
    heldout = heldout_experiment(codes, data.schema, parents, sizes=sizes, prior_strengths=[cfg.prior_strength],
                                 repeats=cfg.repeats, test_fraction=cfg.test_fraction, seed=cfg.seed, truth=truth)
    generation = generation_experiment(codes, data.schema, parents, n_samples=cfg.n_style_samples,
                                       prior_strength=cfg.prior_strength, seed=cfg.seed, truth=truth)
    metrics = style_metrics(summarise_heldout(heldout), generation, sizes[0], sizes[-1], cfg.prior_strength)
    if data.images is not None:
        metrics.update(avatars.run_avatars(data, parents, cfg))
    return metrics
