"""Relevance scorers: a fitted model that scores (query, image) pairs, and a whole gallery for
many queries at once. Trained on votes: a dummy (the mean), ridge regression, an MLP and an
interaction MLP. Trained without votes: the ridge-mapped cosine and contrastive towers, on
(query, its own image) pairs only. Inputs are raw vectors; scorers standardise their own."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import torch
from sklearn.dummy import DummyRegressor
from sklearn.linear_model import Ridge
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from torch import nn

from cvtasks.batches import Batches
from cvtasks.models.search_nets import TwoTowers, info_nce
from cvtasks.runtime import one_thread
from cvtasks.train import FitOptions, History, fit

SCORE_CHUNK = 16_384                               # pairs scored at once (memory bound)


def _tensor(x: np.ndarray) -> torch.Tensor:
    x = np.asarray(x, dtype=np.float32)
    if not x.flags.writeable:   # cached vectors are read-only; torch wants memory it may write
        x = x.copy()
    return torch.from_numpy(x)


def _tensors(inputs: list[np.ndarray]) -> tuple[torch.Tensor, ...]:
    return tuple(_tensor(x) for x in inputs)


@dataclass(frozen=True)
class Schedule:
    """How a network scorer trains: AdamW at ``lr``, batches, at most ``epochs`` with early
    stopping after ``patience`` epochs without a better validation loss."""

    epochs: int
    lr: float
    weight_decay: float
    batch_size: int
    patience: int
    seed: int

    def options(self) -> FitOptions:
        return FitOptions(epochs=self.epochs, monitor="val/loss", mode="min", patience=self.patience, seed=self.seed)


class Scorer:
    """A fitted relevance model: ``predict(img, txt)`` for aligned pairs, ``score_gallery``
    for every query against every image. Inputs are raw embeddings."""

    name = "scorer"

    def predict(self, img: np.ndarray, txt: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def score_gallery(self, gallery: np.ndarray, queries: np.ndarray) -> np.ndarray:
        """(n_queries, n_images) scores."""
        per_chunk = max(1, SCORE_CHUNK // max(len(gallery), 1))
        rows = []
        for start in range(0, len(queries), per_chunk):
            q = queries[start:start + per_chunk]
            img = np.tile(gallery, (len(q), 1))
            txt = np.repeat(q, len(gallery), axis=0)
            rows.append(self.predict(img, txt).reshape(len(q), len(gallery)))
        return np.concatenate(rows) if rows else np.zeros((0, len(gallery)))


class DummyScorer(Scorer):
    name = "dummy"

    def fit(self, img, txt, y):
        self.model = DummyRegressor(strategy="mean").fit(img[:, :1], y)
        return self

    def predict(self, img, txt):
        return self.model.predict(img[:, :1])


class LinearScorer(Scorer):
    """Ridge regression on the standardised, joined vectors (no interactions: a lower bound)."""

    name = "linear"

    def __init__(self, alpha: float):
        self.model = make_pipeline(StandardScaler(), Ridge(alpha=alpha))

    def fit(self, img, txt, y):
        self.model.fit(np.hstack([img, txt]), y)
        return self

    def predict(self, img, txt):
        return np.clip(self.model.predict(np.hstack([img, txt])), 0, 1)


class NetScorer(Scorer):
    """A torch network on standardised vectors, trained with cvtasks.train.fit (MSE). With a
    ``priors`` (fitted zero-shot scorers) the network also gets their scores as a third input."""

    def __init__(self, name: str, net: nn.Module, priors: list[Scorer] | None = None):
        self.name, self.net, self.priors = name, net, priors or []
        self.img_scaler, self.txt_scaler = StandardScaler(), StandardScaler()
        self.history: History | None = None

    def _inputs(self, img, txt, prior=None) -> list[np.ndarray]:
        inputs = [self.img_scaler.transform(img).astype(np.float32), self.txt_scaler.transform(txt).astype(np.float32)]
        if self.priors:
            if prior is None:
                prior = np.column_stack([p.predict(img, txt) for p in self.priors])
            inputs.append(prior.astype(np.float32))
        return inputs

    def fit(self, img, txt, y, val: tuple[np.ndarray, np.ndarray, np.ndarray], schedule: Schedule, *,
            train_prior: np.ndarray | None = None, device: Any = None):
        """``train_prior``: the priors' scores for the training pairs, cross-fitted (see
        crossfit) so that they are no more optimistic than on new pairs."""
        self.img_scaler.fit(img)
        self.txt_scaler.fit(txt)
        train = Batches(_tensors(self._inputs(img, txt, train_prior)), _tensor(y), schedule.batch_size, shuffle=True,
                        seed=schedule.seed)
        valid = Batches(_tensors(self._inputs(val[0], val[1])), _tensor(val[2]), 1024)
        opt = torch.optim.AdamW(self.net.parameters(), lr=schedule.lr, weight_decay=schedule.weight_decay)
        mae = lambda out, tgt: (out - tgt).abs().mean().item()  # noqa: E731
        with one_thread():
            self.history = fit(self.net, train, valid, optimizer=opt, loss_fn=nn.functional.mse_loss,
                               metrics={"mae": mae}, device=device, options=schedule.options())
        self.net.cpu().eval()
        return self

    @torch.no_grad()
    def predict(self, img, txt):
        self.net.cpu().eval()
        with one_thread():
            return self.net(*(torch.from_numpy(x) for x in self._inputs(img, txt))).numpy().astype(float)

    @torch.no_grad()
    def score_gallery(self, gallery, queries):
        """Every query against every image through the net's ``grid``: the vectors are
        standardised and projected once each and the priors score their own grids, where
        pair by pair (the base class) would repeat that work for each of the n_q x n_g pairs."""
        self.net.cpu().eval()
        img = torch.from_numpy(self.img_scaler.transform(gallery).astype(np.float32))
        txt = torch.from_numpy(self.txt_scaler.transform(queries).astype(np.float32))
        prior = (torch.from_numpy(np.stack([p.score_gallery(gallery, queries) for p in self.priors], -1)).float()
                 if self.priors else None)
        per_chunk = max(1, SCORE_CHUNK // max(len(gallery), 1))
        rows = [self.net.grid(img, txt[s:s + per_chunk], None if prior is None else prior[s:s + per_chunk])
                for s in range(0, len(txt), per_chunk)]
        return torch.cat(rows).numpy().astype(float) if rows else np.zeros((0, len(gallery)))


class CosineScorer(Scorer):
    """Zero-shot ranking baseline: a ridge map from the text space into the (standardised)
    image space, fitted on (query, its own image) pairs; score = cosine in image space.
    A linear map rather than CCA/PLS: with ~1,900 pairs and 1,280 + 384 dimensions CCA
    overfits without heavy regularisation, and ridge has one knob and a closed form."""

    name = "cosine"

    def __init__(self, alpha: float):
        self.scaler = StandardScaler()
        self.map = Ridge(alpha=alpha)

    def fit(self, own_img, txt):
        self.map.fit(txt, self.scaler.fit_transform(own_img))
        return self

    def _unit(self, x):
        return x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)

    def predict(self, img, txt):
        return np.sum(self._unit(self.scaler.transform(img)) * self._unit(self.map.predict(txt)), axis=1)

    def score_gallery(self, gallery, queries):
        return self._unit(self.map.predict(queries)) @ self._unit(self.scaler.transform(gallery)).T


class ContrastiveScorer(Scorer):
    """Zero-shot ranking by the cosine of TwoTowers trained contrastively on (query, its own
    image) pairs: in-batch negatives teach the match without any vote."""

    name = "contrastive"

    def __init__(self, d_img: int, d_txt: int, dim: int, dropout: float):
        self.net = TwoTowers(d_img, d_txt, dim, dropout)
        self.img_scaler, self.txt_scaler = StandardScaler(), StandardScaler()
        self.history: History | None = None

    def fit(self, own_img, txt, image_ids, val: tuple[np.ndarray, np.ndarray, np.ndarray], schedule: Schedule, *,
            device: Any = None):
        """``image_ids``: which image each pair shows (two queries may share one)."""
        self.img_scaler.fit(own_img)
        self.txt_scaler.fit(txt)
        train = Batches(_tensors(self._inputs(own_img, txt)), _tensor(image_ids), schedule.batch_size, shuffle=True,
                        seed=schedule.seed, drop_last=True)
        # one batch: cvtasks.train.validate joins the batches' logits before the loss
        valid = Batches(_tensors(self._inputs(val[0], val[1])), _tensor(val[2]), max(1, len(val[2])))
        opt = torch.optim.AdamW(self.net.parameters(), lr=schedule.lr, weight_decay=schedule.weight_decay)
        with one_thread():
            self.history = fit(self.net, train, valid, optimizer=opt, loss_fn=info_nce, device=device,
                               options=schedule.options())
        self.net.cpu().eval()
        return self

    def _inputs(self, img, txt) -> list[np.ndarray]:
        return [self.img_scaler.transform(img).astype(np.float32), self.txt_scaler.transform(txt).astype(np.float32)]

    @torch.no_grad()
    def _embed(self, img, txt) -> tuple[torch.Tensor, torch.Tensor]:
        img, txt = (torch.from_numpy(x) for x in self._inputs(img, txt))
        return self.net.embed_images(img), self.net.embed_texts(txt)

    def predict(self, img, txt):
        ei, et = self._embed(img, txt)
        return (ei * et).sum(dim=1).numpy().astype(float)

    def score_gallery(self, gallery, queries):
        ei, _ = self._embed(gallery, np.zeros((len(gallery), self.txt_scaler.n_features_in_)))
        _, et = self._embed(np.zeros((len(queries), self.img_scaler.n_features_in_)), queries)
        return (et @ ei.T).numpy().astype(float)


def own_image_rows(pairs: pd.DataFrame, rows: np.ndarray) -> np.ndarray:
    """The rows (among ``rows``) that pair a query with the image it was written for
    (query id ``<image>#<n>``)."""
    sub = pairs.iloc[rows]
    return rows[(sub.query_id.str.rsplit("#", n=1).str[0] == sub.image).to_numpy()]


def blend(scores: dict[str, np.ndarray], weights: dict[str, float]) -> np.ndarray:
    """A weighted sum of (queries, gallery) scores, each z-scored over the gallery first so that
    scorers on different scales count as weighted."""
    total = 0.0
    for name, s in scores.items():
        total = total + weights[name] * (s - s.mean(1, keepdims=True)) / (s.std(1, keepdims=True) + 1e-9)
    return total
