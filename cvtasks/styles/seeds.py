"""The styles task's headline figures repeated over seeds, for their spread.

One seed fixes everything random in the task: the generated table and avatars (the embedded
default), the row split, the sampled styles and the generated avatars. ``one_seed`` runs the
task's own steps for the headline figures (structure learned on training rows, prior strength
and edge directions chosen on validation, test rows scored once) and ``spread`` gives the mean
over seeds with a Student-t interval. A user's own table keeps its rows across seeds (only the
split and the samplers change) and has no truth, so the truth's figures are left out.
"""
from __future__ import annotations

from dataclasses import replace

import numpy as np
import pandas as pd

from cvtasks.data.styles import ground_truth, load_styles
from cvtasks.models.bayesnet import encode
from cvtasks.stats import mean_interval, seeds_interval
from cvtasks.styles import avatars as A
from cvtasks.styles import experiments as X
from cvtasks.styles import structure as G
from cvtasks.styles.estimation import fit_model

# the figures every seed gives: how the notebook names them, and the range they can take (a
# Student-t interval over five counts can reach below 0; it is cut at what the figure can be)
HEADLINES = {
    "heldout_ll": ("test log-likelihood per style (nats), learned structure, Bayes", (-np.inf, 0.0)),
    "shd": ("SHD of the learned skeleton to the true one", (0.0, np.inf)),
    "reversed_edges": ("learned edges pointing against the true ones", (0.0, np.inf)),
    "invalid_rate": ("share of sampled styles no person could have", (0.0, 1.0)),
    "recognisability/a_independent": ("avatar recognisability (a) independent pixels", (0.0, 1.0)),
    "recognisability/b_conditional": ("avatar recognisability (b) pixels given the style", (0.0, 1.0)),
    "recognisability/c_factor": ("avatar recognisability (c) factor model", (0.0, 1.0)),
}


def one_seed(cfg) -> dict[str, float]:
    """The headline figures of one run of the task at ``cfg.seed``, with the test log-likelihood's
    95 % interval over the test rows (bootstrap)."""
    raw = load_styles(cfg)
    codes = encode(raw.table, raw.schema)
    split = X.split_rows(len(codes), cfg.val_fraction, cfg.test_fraction, cfg.seed)
    train = codes[split.train]
    edges = G.learn_skeleton(train, raw.schema, cfg.structure_ess)
    strength, parents, _ = X.choose_prior(codes, raw.schema, split, edges, cfg.prior_strengths)
    model = fit_model(train, raw.schema, parents, "bayes", strength)
    ll = mean_interval(model.log_prob(codes[split.test]), seed=cfg.seed)
    out = {"seed": cfg.seed, "prior_strength": strength, **ll.items("heldout_ll")}
    truth = ground_truth() if cfg.styles_csv is None else None
    if truth is not None:
        out.update({"shd": G.shd(edges, truth.parents), "reversed_edges": G.reversed_edges(parents, truth.parents),
                    "invalid_rate": X.invalid_rate(truth, model, cfg.n_style_samples, cfg.seed)})
    if raw.images is not None:
        res = A.avatar_experiment(raw.images, codes, raw.schema, parents, model, split.train, split.test, cfg)
        out.update({f"recognisability/{m}": float(res.table.loc[m, "recognisability"]) for m in A.METHODS})
    return out


def over_seeds(cfg, progress=None) -> pd.DataFrame:
    """One row per seed: cfg.seed, cfg.seed + 1, ... (``cfg.seeds`` of them)."""
    seeds = [cfg.seed + i for i in range(cfg.seeds)]
    rows = [one_seed(replace(cfg, seed=s)) for s in (progress(seeds) if progress else seeds)]
    return pd.DataFrame(rows).set_index("seed")


def spread(per_seed: pd.DataFrame) -> pd.DataFrame:
    """Each headline figure's mean over the seeds with its 95 % Student-t interval, and its range."""
    rows = {}
    for key, (name, (lowest, highest)) in HEADLINES.items():
        if key in per_seed:
            values = per_seed[key].to_numpy(float)
            mean = seeds_interval(values)
            rows[key] = {"figure": name, "mean": mean.value, "ci_low": max(mean.low, lowest),
                         "ci_high": min(mean.high, highest), "min": values.min(), "max": values.max()}
    return pd.DataFrame.from_dict(rows, orient="index")
