"""Fitting every scorer on the training pairs, with the validation gallery for early stopping
and for the contrastive towers' size (never the test gallery)."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from sklearn.model_selection import GroupKFold

import config
from cvtasks.models.search_nets import ConcatMLP, InteractionMLP
from cvtasks.runtime import seed_everything
from cvtasks.search.data import SearchData
from cvtasks.search.features import Features
from cvtasks.search.scorers import (
    ContrastiveScorer,
    CosineScorer,
    DummyScorer,
    LinearScorer,
    NetScorer,
    Schedule,
    Scorer,
    own_image_rows,
)

VOTE_TRAINED = ("dummy", "linear", "mlp", "interaction")
VOTE_FREE = ("cosine", "contrastive")
Towers = tuple[int, float]   # the contrastive towers' shared-space size and dropout


@dataclass
class Validation:
    """The validation gallery's new queries, as training code needs them."""

    pairs: tuple[np.ndarray, np.ndarray, np.ndarray]   # image vectors, query vectors, targets of voted pairs
    own: tuple[np.ndarray, np.ndarray, np.ndarray]     # (own image, query) vectors and image ids


def schedule(cfg: config.SearchConfig, *, epochs: int) -> Schedule:
    """The network scorers' shared training settings from the config, at ``epochs``."""
    return Schedule(epochs=epochs, lr=cfg.lr, weight_decay=cfg.weight_decay, batch_size=cfg.batch_size,
                    patience=cfg.patience, seed=cfg.seed)


def validation(data: SearchData, feats: Features) -> Validation:
    g = data.val
    new = g.queries.kind == "new"
    pairs = g.pairs(g.queries[new])
    q_rows = np.flatnonzero(new)[pairs.query_row.to_numpy()]
    img, txt = feats.gallery["val"], feats.queries["val"]
    own_q = np.flatnonzero(new & g.queries.image.isin(g.images).to_numpy())
    own_img = g.queries.image.iloc[own_q].map({n: j for j, n in enumerate(g.images)}).to_numpy()
    return Validation((img[pairs.image_row.to_numpy()], txt[q_rows], pairs.target.to_numpy()),
                      (img[own_img], txt[own_q], own_img.astype(float)))


def fit_zero_shot(kind: str, cfg: config.SearchConfig, feats: Features, pairs: pd.DataFrame, rows: np.ndarray,
                  val: Validation, device: Any = None, towers: Towers | None = None) -> Scorer:
    """The "cosine" (ridge map) or "contrastive" (towers of size and dropout ``towers``) scorer,
    fitted on the (query, own image) pairs among ``rows``; the towers stop early on validation."""
    own = own_image_rows(pairs, rows)
    if len(own) == 0:
        raise ValueError(f"the {kind} ranker needs training pairs of a query and its own image "
                         "(query id '<image>#<n>'); none found")
    if kind == "cosine":
        return CosineScorer(cfg.ridge_alpha).fit(*feats.train_pairs(own))
    if towers is None:
        raise ValueError("the contrastive scorer needs its towers (size, dropout): see select_towers")
    seed_everything(cfg.seed)
    scorer = ContrastiveScorer(feats.train_images.shape[1], feats.train_queries.shape[1], *towers)
    return scorer.fit(*feats.train_pairs(own), feats.pair_image[own], val.own,
                      schedule(cfg, epochs=cfg.contrastive_epochs), device=device)


def crossfit(kind: str, cfg: config.SearchConfig, feats: Features, pairs: pd.DataFrame, val: Validation,
             device: Any = None, towers: Towers | None = None) -> np.ndarray:
    """Zero-shot scores of every training pair, each from a scorer fitted without that pair's
    image (folds grouped by image): in-sample scores of own-image pairs would be too good."""
    rows = np.arange(len(pairs))
    groups = pairs.image.to_numpy()
    out = np.zeros(len(rows))
    for fit_part, score_part in GroupKFold(n_splits=min(cfg.crossfit_folds, len(set(groups)))).split(rows, groups=groups):
        scorer = fit_zero_shot(kind, cfg, feats, pairs, rows[fit_part], val, device, towers)
        out[score_part] = scorer.predict(*feats.train_pairs(rows[score_part]))
    return out


def select_towers(cfg: config.SearchConfig, feats: Features, pairs: pd.DataFrame, val: Validation,
                  device: Any = None) -> tuple[Towers, pd.DataFrame, Scorer]:
    """The contrastive towers of the config's grid with the lowest validation loss (InfoNCE on
    the validation gallery's own-image pairs); returns the choice, every try, the fitted scorer."""
    rows_, scorers = [], {}
    everything = np.arange(len(pairs))
    for dim in cfg.contrastive_dims:
        for dropout in cfg.contrastive_dropouts:
            scorer = fit_zero_shot("contrastive", cfg, feats, pairs, everything, val, device, (dim, dropout))
            scorers[dim, dropout] = scorer
            rows_.append({"dim": dim, "dropout": dropout, "val/loss": scorer.history.best_score,
                          "best_epoch": scorer.history.best_epoch})
    table = pd.DataFrame(rows_)
    best = table.loc[table["val/loss"].idxmin()]
    towers = (int(best["dim"]), float(best["dropout"]))
    return towers, table, scorers[towers]


@dataclass
class Priors:
    """The vote-free scorers (fitted on all training pairs), their cross-fitted scores of the
    training pairs (the interaction network's extra inputs), and the towers tried."""

    scorers: dict[str, Scorer]
    train_scores: np.ndarray
    towers: pd.DataFrame


def fit_priors(cfg: config.SearchConfig, feats: Features, pairs: pd.DataFrame, val: Validation,
               device: Any = None) -> Priors:
    towers, table, contrastive = select_towers(cfg, feats, pairs, val, device)
    everything = np.arange(len(pairs))
    scorers = {"cosine": fit_zero_shot("cosine", cfg, feats, pairs, everything, val, device), "contrastive": contrastive}
    scores = np.column_stack([crossfit(kind, cfg, feats, pairs, val, device, towers) for kind in VOTE_FREE])
    return Priors(scorers, scores, table)


def fit_net(kind: str, cfg: config.SearchConfig, feats: Features, target: np.ndarray, val: Validation,
            priors: Priors | None = None, device: Any = None) -> NetScorer:
    """The "mlp" (joined vectors) or the "interaction" network (needs ``priors``)."""
    seed_everything(cfg.seed)   # the same initial weights on every run
    d_img, d_txt = feats.train_images.shape[1], feats.train_queries.shape[1]
    if kind == "mlp":
        scorer, train_prior = NetScorer(kind, ConcatMLP(d_img, d_txt, cfg.hidden_dim, cfg.dropout)), None
    else:
        if priors is None:
            raise ValueError("the interaction network needs the fitted vote-free priors (fit_priors)")
        scorer = NetScorer(kind, InteractionMLP(d_img, d_txt, cfg.proj_dim, cfg.hidden_dim, cfg.dropout,
                                                n_priors=len(priors.scorers)), priors=list(priors.scorers.values()))
        train_prior = priors.train_scores
    return scorer.fit(*feats.train_pairs(), target, val.pairs, schedule(cfg, epochs=cfg.epochs),
                      train_prior=train_prior, device=device)


def fit_all(cfg: config.SearchConfig, data: SearchData, feats: Features, target: np.ndarray,
            device: Any = None) -> tuple[dict[str, Scorer], Priors]:
    """Every scorer, vote-trained and vote-free, fitted on the training pairs."""
    val = validation(data, feats)
    models: dict[str, Scorer] = {"dummy": DummyScorer().fit(*feats.train_pairs(), target),
                                 "linear": LinearScorer(cfg.linear_alpha).fit(*feats.train_pairs(), target)}
    priors = fit_priors(cfg, feats, data.train, val, device)
    for kind in ("mlp", "interaction"):
        models[kind] = fit_net(kind, cfg, feats, target, val, priors, device)
    models.update(priors.scorers)
    return models, priors
