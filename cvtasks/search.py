"""Image search by text: a model that scores how well a query fits an image (0..1), and search.

Data: the course layout (cvtasks.data.course_search), by default built from Open Clip Art
(cvtasks.data.openclipart). Target: the three experts' votes 1..4 mapped to 0..1 and averaged,
``(mean(votes) - 1) / 3``, optionally blended with the crowd's share of "fits". Features:
frozen image embeddings (efficientnet_lite0 offline, resnet50 online) and sentence embeddings
(all-MiniLM-L6-v2 offline, distilbert-base-uncased online), cached. The annotated pairs are
split by image (GroupShuffleSplit) into train / val / test, so that no image is on two sides.

Models, side by side: a dummy (the mean), ridge regression on the joined vectors, an MLP on
the joined vectors, an MLP on interaction features (both vectors projected to a common space:
their element-wise product and cosine), and a zero-shot cosine baseline for ranking (a ridge
map from text space to image space fitted on (query, its own image) pairs of the train split,
then the cosine in image space; it never sees a vote), and a second zero-shot ranker,
CLIP-style towers trained contrastively on the same pairs (their scores also feed the
interaction network). Regression metrics on the held-out
pairs; search metrics (NDCG@10, Recall@5 per query) on the gallery of test images.
"""
from __future__ import annotations

import functools
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
from sklearn.dummy import DummyRegressor
from sklearn.linear_model import Ridge
from sklearn.metrics import mean_absolute_error, mean_squared_error, ndcg_score, r2_score
from sklearn.model_selection import GroupKFold, GroupShuffleSplit
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from torch import nn
from torch.utils.data import DataLoader, Dataset

import config
from cvtasks import cache
from cvtasks.data import course_search, openclipart
from cvtasks.data.course_search import CourseSearchData, load_image
from cvtasks.io import atomic_write
from cvtasks.runtime import one_thread, seed_everything
from cvtasks.train import History, fit

EXPERTS = ["expert_1", "expert_2", "expert_3"]
LEARNED = ("linear", "mlp", "interaction")        # candidates for "the best model"
ZERO_SHOT = ("cosine", "contrastive")               # rankers trained without votes
MODEL_NAMES = ("dummy", *LEARNED, *ZERO_SHOT)
SCORE_CHUNK = 16_384                               # pairs scored at once (memory bound)


# --- data and target -----------------------------------------------------------------------
def load_data(cfg: config.SearchConfig) -> CourseSearchData:
    """The user's course-layout folder when ``cfg.dataset_dir`` is set, else the Open Clip Art
    build for these settings (built on first use)."""
    if cfg.dataset_dir is not None:
        return course_search.load(cfg.dataset_dir)
    return course_search.load(openclipart.ensure_built(openclipart.BuildSettings.from_config(cfg)))


def expert_target(votes: np.ndarray) -> np.ndarray:
    """The aggregation rule: each vote 1..4 mapped to 0..1 by (v - 1) / 3, then averaged."""
    votes = np.asarray(votes, dtype=float)
    if votes.size and (votes.min() < 1 or votes.max() > 4):
        raise ValueError("expert votes must lie in 1..4")
    return (votes.mean(axis=1) - 1) / 3


def blended_target(pairs: pd.DataFrame, crowd_weight: float) -> np.ndarray:
    """(1 - w) * expert target + w * crowd share; pairs without crowd votes keep the experts'."""
    if not 0 <= crowd_weight <= 1:
        raise ValueError(f"crowd_weight = {crowd_weight}: must lie in 0..1")
    expert = expert_target(pairs[EXPERTS].to_numpy())
    crowd = pairs["share"].to_numpy(dtype=float)
    return np.where(np.isnan(crowd), expert, (1 - crowd_weight) * expert + crowd_weight * crowd)


def gallery_gains(data: CourseSearchData) -> np.ndarray:
    """Relevance of every test image to every test query (queries x gallery): the experts'
    target where test votes exist, and 1 for the query's own image; unknown pairs count 0."""
    col = {name: j for j, name in enumerate(data.test_images)}
    row = {qid: i for i, qid in enumerate(data.test_queries.query_id)}
    gains = np.zeros((len(row), len(col)))
    if data.test_votes is not None:
        votes = data.test_votes[data.test_votes.query_id.isin(row) & data.test_votes.image.isin(col)]
        gains[votes.query_id.map(row), votes.image.map(col)] = expert_target(votes[EXPERTS].to_numpy())
    gains[np.arange(len(row)), data.test_queries.image.map(col).to_numpy()] = 1.0
    return gains


# --- features ------------------------------------------------------------------------------
@functools.lru_cache(maxsize=2)
def image_encoder(name: str):
    from cvtasks.models import create_image_encoder

    return create_image_encoder(name)


@functools.lru_cache(maxsize=2)
def text_encoder(name: str):
    from cvtasks.models import create_text_encoder

    return create_text_encoder(name)


@dataclass
class Features:
    """Embeddings of the unique images and queries, and each pair's row in them."""

    train_images: np.ndarray   # (len(data.train_images), d_img)
    test_images: np.ndarray    # (len(data.test_images), d_img): the search gallery
    queries: np.ndarray        # (number of train query ids, d_txt)
    test_queries: np.ndarray   # (len(data.test_queries), d_txt)
    pair_image: np.ndarray     # pair -> row of train_images
    pair_query: np.ndarray     # pair -> row of queries

    def pairs(self, rows: np.ndarray | slice = slice(None)) -> tuple[np.ndarray, np.ndarray]:
        return self.train_images[self.pair_image[rows]], self.queries[self.pair_query[rows]]


def embed_folder(cfg: config.SearchConfig, folder: Path, names: list[str], device: Any = None) -> np.ndarray:
    """Image embeddings of ``folder/<name>``, cached by encoder, folder and file sizes."""
    files = [(n, (folder / n).stat().st_size) for n in names]
    key = {"folder": str(folder), "files": cache.fingerprint(files), "n": len(files), "alpha": "white"}
    return cache.image_embeddings(image_encoder(cfg.image_encoder), lambda: [load_image(folder / n) for n in names],
                                  key, device=device)


def embed_texts(cfg: config.SearchConfig, texts: list[str]) -> np.ndarray:
    return cache.text_embeddings(text_encoder(cfg.text_encoder), list(texts))


def compute_features(cfg: config.SearchConfig, data: CourseSearchData, device: Any = None) -> Features:
    queries = data.pairs.drop_duplicates("query_id")
    q_row = {qid: i for i, qid in enumerate(queries.query_id)}
    i_row = {name: i for i, name in enumerate(data.train_images)}
    return Features(
        train_images=embed_folder(cfg, data.root / "train_images", data.train_images, device),
        test_images=embed_folder(cfg, data.root / "test_images", data.test_images, device),
        queries=embed_texts(cfg, queries.query_text.tolist()),
        test_queries=embed_texts(cfg, data.test_queries.query_text.tolist()),
        pair_image=data.pairs.image.map(i_row).to_numpy(),
        pair_query=data.pairs.query_id.map(q_row).to_numpy(),
    )


# --- split ---------------------------------------------------------------------------------
def split_by_image(images: pd.Series, test_fraction: float, val_fraction: float, seed: int) -> dict[str, np.ndarray]:
    """Row indices of train / val / test; every image's pairs fall on one side only."""
    groups = images.to_numpy()
    rows = np.arange(len(groups))
    outer = GroupShuffleSplit(n_splits=1, test_size=test_fraction, random_state=seed)
    rest, test = next(outer.split(rows, groups=groups))
    inner = GroupShuffleSplit(n_splits=1, test_size=val_fraction, random_state=seed + 1)
    train, val = next(inner.split(rest, groups=groups[rest]))
    return {"train": rest[train], "val": rest[val], "test": test}


# --- models --------------------------------------------------------------------------------
class ConcatMLP(nn.Module):
    """An MLP on the joined image and text vectors; sigmoid output in 0..1."""

    def __init__(self, d_img: int, d_txt: int, hidden: int, dropout: float):
        super().__init__()
        self.net = nn.Sequential(nn.Linear(d_img + d_txt, hidden), nn.ReLU(), nn.Dropout(dropout),
                                 nn.Linear(hidden, hidden // 2), nn.ReLU(), nn.Dropout(dropout),
                                 nn.Linear(hidden // 2, 1))

    def forward(self, img: torch.Tensor, txt: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(self.net(torch.cat([img, txt], dim=1))).squeeze(1)

    def grid(self, img: torch.Tensor, txt: torch.Tensor, prior: torch.Tensor | None = None) -> torch.Tensor:
        """(n_txt, n_img) scores of every text against every image: the first layer is split
        into its image and text halves, each applied once per vector instead of once per pair."""
        first, d_img = self.net[0], img.shape[1]
        hidden = (txt @ first.weight[:, d_img:].T)[:, None, :] + (img @ first.weight[:, :d_img].T + first.bias)[None]
        return torch.sigmoid(self.net[1:](hidden)).squeeze(-1)


class InteractionMLP(nn.Module):
    """Both vectors projected to a common space and normalised; the head sees their
    element-wise product and cosine (how well they agree) and the zero-shot scores
    (``prior``), which carry what ~1,900 (query, own image) pairs teach about the two spaces
    far better than one vote per pair does. The projections themselves are left out of the
    head: with them it memorised images and queries."""

    def __init__(self, d_img: int, d_txt: int, proj: int, hidden: int, dropout: float, n_priors: int = 1):
        super().__init__()
        self.img = nn.Sequential(nn.Dropout(dropout), nn.Linear(d_img, proj))
        self.txt = nn.Sequential(nn.Dropout(dropout), nn.Linear(d_txt, proj))
        self.head = nn.Sequential(nn.Linear(proj + 1 + n_priors, hidden), nn.ReLU(), nn.Dropout(dropout),
                                  nn.Linear(hidden, 1))

    def forward(self, img: torch.Tensor, txt: torch.Tensor, prior: torch.Tensor) -> torch.Tensor:
        return self._score(self.img(img), self.txt(txt), prior.reshape(len(img), -1))

    def grid(self, img: torch.Tensor, txt: torch.Tensor, prior: torch.Tensor) -> torch.Tensor:
        """(n_txt, n_img) scores of every text against every image (``prior``: (n_txt, n_img,
        n_priors)); each side is projected once, not once per pair."""
        return self._score(self.img(img)[None], self.txt(txt)[:, None], prior)

    def _score(self, img: torch.Tensor, txt: torch.Tensor, prior: torch.Tensor) -> torch.Tensor:
        """The head on projected vectors that broadcast against each other (pairs or a grid)."""
        product = nn.functional.normalize(img, dim=-1) * nn.functional.normalize(txt, dim=-1)
        features = torch.cat([product, product.sum(dim=-1, keepdim=True), prior], dim=-1)
        return torch.sigmoid(self.head(features)).squeeze(-1)


class _Pairs(Dataset):
    """((image vector, text vector[, prior]), target) per pair."""

    def __init__(self, y: np.ndarray, *inputs: np.ndarray):
        self.inputs = [torch.as_tensor(x, dtype=torch.float32) for x in inputs]
        self.y = torch.as_tensor(y, dtype=torch.float32)

    def __len__(self) -> int:
        return len(self.y)

    def __getitem__(self, i: int):
        return tuple(x[i] for x in self.inputs), self.y[i]




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

    def fit(self, img, txt, y, val: tuple[np.ndarray, np.ndarray, np.ndarray], *, epochs: int, lr: float,
            weight_decay: float, batch_size: int, patience: int, seed: int, train_prior: np.ndarray | None = None,
            device: Any = None, run: Any = None, progress: bool = False):
        """``train_prior``: the priors' scores for the training pairs, cross-fitted (see
        crossfit) so that they are no more optimistic than on new pairs."""
        self.img_scaler.fit(img)
        self.txt_scaler.fit(txt)
        train = _Pairs(y, *self._inputs(img, txt, train_prior))
        valid = _Pairs(val[2], *self._inputs(val[0], val[1]))
        gen = torch.Generator().manual_seed(seed)
        loader = DataLoader(train, batch_size=batch_size, shuffle=True, generator=gen)
        val_loader = DataLoader(valid, batch_size=1024)
        opt = torch.optim.AdamW(self.net.parameters(), lr=lr, weight_decay=weight_decay)
        mae = lambda out, tgt: (out - tgt).abs().mean().item()  # noqa: E731
        with one_thread():
            self.history = fit(self.net, loader, val_loader, epochs=epochs, optimizer=opt,
                               loss_fn=nn.functional.mse_loss, metrics={"mae": mae}, monitor="val/loss",
                               mode="min", patience=patience, device=device, seed=seed, run=run,
                               progress=progress)
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


class TwoTowers(nn.Module):
    """CLIP-style heads on the frozen vectors: each side projected (after dropout) into a
    shared space and normalised; ``forward`` gives the scaled cosine of every text against
    every image in the batch (the logits of the contrastive loss), with a learned temperature."""

    def __init__(self, d_img: int, d_txt: int, dim: int, dropout: float, temperature: float = 0.07):
        super().__init__()
        self.img = nn.Sequential(nn.Dropout(dropout), nn.Linear(d_img, dim))
        self.txt = nn.Sequential(nn.Dropout(dropout), nn.Linear(d_txt, dim))
        self.log_scale = nn.Parameter(torch.tensor(float(np.log(1 / temperature))))

    def embed_images(self, img: torch.Tensor) -> torch.Tensor:
        return nn.functional.normalize(self.img(img), dim=1)

    def embed_texts(self, txt: torch.Tensor) -> torch.Tensor:
        return nn.functional.normalize(self.txt(txt), dim=1)

    def forward(self, img: torch.Tensor, txt: torch.Tensor) -> torch.Tensor:
        return self.log_scale.exp().clamp(max=100) * self.embed_texts(txt) @ self.embed_images(img).T


def info_nce(logits: torch.Tensor, image_ids: torch.Tensor) -> torch.Tensor:
    """Symmetric InfoNCE over a batch of (text, own image) pairs. Two queries of one image can
    share a batch, so every column holding the same image counts as a match (soft targets)."""
    match = (image_ids[:, None] == image_ids[None, :]).float()
    target = match / match.sum(dim=1, keepdim=True)
    return (nn.functional.cross_entropy(logits, target) + nn.functional.cross_entropy(logits.T, target)) / 2


class ContrastiveScorer(Scorer):
    """Zero-shot ranking by the cosine of TwoTowers trained contrastively on (query, its own
    image) pairs: in-batch negatives teach the match without any vote."""

    name = "contrastive"

    def __init__(self, d_img: int, d_txt: int, dim: int, dropout: float):
        self.net = TwoTowers(d_img, d_txt, dim, dropout)
        self.img_scaler, self.txt_scaler = StandardScaler(), StandardScaler()
        self.history: History | None = None

    def fit(self, own_img, txt, image_ids, val: tuple[np.ndarray, np.ndarray, np.ndarray], *, epochs: int, lr: float,
            weight_decay: float, batch_size: int, patience: int, seed: int, device: Any = None):
        """``image_ids``: which image each pair shows (two queries may share one)."""
        self.img_scaler.fit(own_img)
        self.txt_scaler.fit(txt)
        train = _Pairs(image_ids, *self._inputs(own_img, txt))
        valid = _Pairs(val[2], *self._inputs(val[0], val[1]))
        gen = torch.Generator().manual_seed(seed)
        loader = DataLoader(train, batch_size=batch_size, shuffle=True, generator=gen, drop_last=len(train) > batch_size)
        # one batch: cvtasks.train.evaluate joins the batches' logits before the loss
        val_loader = DataLoader(valid, batch_size=len(valid))
        opt = torch.optim.AdamW(self.net.parameters(), lr=lr, weight_decay=weight_decay)
        with one_thread():
            self.history = fit(self.net, loader, val_loader, epochs=epochs, optimizer=opt, loss_fn=info_nce,
                               monitor="val/loss", mode="min", patience=patience, device=device, seed=seed,
                               progress=False)
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


# --- metrics -------------------------------------------------------------------------------
def regression_metrics(y: np.ndarray, pred: np.ndarray, prefix: str) -> dict[str, float]:
    mse = mean_squared_error(y, pred)
    return {f"{prefix}/mae": mean_absolute_error(y, pred), f"{prefix}/mse": mse,
            f"{prefix}/rmse": float(np.sqrt(mse)), f"{prefix}/r2": r2_score(y, pred)}


def recall_at_k(scores: np.ndarray, own: np.ndarray, k: int) -> np.ndarray:
    """Per query: is its own image in the top k? Ties are broken at random, so a tied block
    straddling rank k counts by the chance it lands inside (a constant model gets k / n)."""
    own_score = scores[np.arange(len(scores)), own][:, None]
    above = (scores > own_score).sum(axis=1)
    tied = (scores == own_score).sum(axis=1)
    return np.clip((k - above) / tied, 0.0, 1.0)


def ranking_metrics(scores: np.ndarray, gains: np.ndarray, own: np.ndarray, prefix: str,
                    k_ndcg: int = 10, k_recall: int = 5) -> tuple[dict[str, float], pd.DataFrame]:
    """Mean NDCG@k (graded gains; sklearn averages over tied scores) and Recall@k of the own
    image, and the per-query values."""
    ndcg = np.array([ndcg_score(g[None], s[None], k=k_ndcg) for g, s in zip(gains, scores)])
    recall = recall_at_k(scores, own, k_recall)
    per_query = pd.DataFrame({f"ndcg@{k_ndcg}": ndcg, f"recall@{k_recall}": recall})
    return ({f"{prefix}/ndcg@{k_ndcg}": float(ndcg.mean()), f"{prefix}/recall@{k_recall}": float(recall.mean())},
            per_query)


# --- the experiment ------------------------------------------------------------------------
@dataclass
class Experiment:
    """Everything one run produced: data, features, split, fitted models and their metrics."""

    cfg: config.SearchConfig
    data: CourseSearchData
    features: Features
    split: dict[str, np.ndarray]
    target: np.ndarray                 # what the models were trained on
    models: dict[str, Scorer] = field(default_factory=dict)
    metrics: dict[str, float] = field(default_factory=dict)
    per_query: dict[str, pd.DataFrame] = field(default_factory=dict)
    priors: Priors | None = None
    best: str = ""

    def table(self) -> pd.DataFrame:
        """One row per model; columns val/test metrics (cosine: ranking only)."""
        rows = {}
        for name in self.models:
            rows[name] = {k[len(name) + 1:]: v for k, v in self.metrics.items() if k.startswith(f"{name}/")}
        return pd.DataFrame(rows).T

    def summary(self) -> dict[str, float]:
        """Flat metrics for metrics.json: every model's, and the best model's without prefix."""
        out = dict(self.metrics)
        out.update({k[len(self.best) + 1:]: v for k, v in self.metrics.items() if k.startswith(f"{self.best}/")})
        return out


def prepare(cfg: config.SearchConfig, device: Any = None) -> tuple[CourseSearchData, Features, dict[str, np.ndarray]]:
    data = load_data(cfg)
    feats = compute_features(cfg, data, device)
    split = split_by_image(data.pairs.image, cfg.test_fraction, cfg.val_fraction, cfg.seed)
    return data, feats, split


class _Prefixed:
    """Logs a network's epochs under its own name, so that two networks do not mix in W&B."""

    def __init__(self, run: Any, prefix: str):
        self.run, self.prefix = run, prefix

    def log(self, row: dict[str, float]) -> None:
        self.run.log({f"{self.prefix}/{k}": v for k, v in row.items()})


Towers = tuple[int, float]   # the contrastive towers' shared-space size and dropout


def fit_zero_shot(kind: str, cfg: config.SearchConfig, feats: Features, pairs: pd.DataFrame, rows: np.ndarray,
                  val_rows: np.ndarray, device: Any = None, towers: Towers | None = None) -> Scorer:
    """The "cosine" (ridge map) or "contrastive" (TwoTowers of size and dropout ``towers``)
    scorer, fitted on the (query, own image) pairs among ``rows``; the contrastive one stops
    early on those among ``val_rows``."""
    own = own_image_rows(pairs, rows)
    if len(own) == 0:
        raise ValueError(f"the {kind} baseline needs training pairs of a query and its own image "
                         "(query id '<image>#<n>'); none found")
    if kind == "cosine":
        return CosineScorer(cfg.ridge_alpha).fit(*feats.pairs(own))
    if towers is None:
        raise ValueError("the contrastive scorer needs its towers (size, dropout): see select_towers")
    seed_everything(cfg.seed)
    val_own = own_image_rows(pairs, val_rows)
    scorer = ContrastiveScorer(feats.train_images.shape[1], feats.queries.shape[1], *towers)
    return scorer.fit(*feats.pairs(own), feats.pair_image[own], (*feats.pairs(val_own), feats.pair_image[val_own]),
                      epochs=cfg.contrastive_epochs, lr=cfg.lr, weight_decay=cfg.weight_decay,
                      batch_size=cfg.batch_size, patience=cfg.patience, seed=cfg.seed, device=device)


def crossfit(kind: str, cfg: config.SearchConfig, feats: Features, pairs: pd.DataFrame, rows: np.ndarray,
             val_rows: np.ndarray, device: Any = None, towers: Towers | None = None) -> np.ndarray:
    """Zero-shot scores of ``rows``, each from a scorer fitted without that row's image (folds
    grouped by image): in-sample scores of own-image pairs would be too good to trust."""
    groups = pairs.image.to_numpy()[rows]
    out = np.zeros(len(rows))
    for fit_part, score_part in GroupKFold(n_splits=min(cfg.crossfit_folds, len(set(groups)))).split(rows, groups=groups):
        scorer = fit_zero_shot(kind, cfg, feats, pairs, rows[fit_part], val_rows, device, towers)
        out[score_part] = scorer.predict(*feats.pairs(rows[score_part]))
    return out


@dataclass
class Priors:
    """The zero-shot scorers the interaction network takes as inputs, fitted on the train
    split, and their cross-fitted scores of the training pairs."""

    scorers: dict[str, Scorer]
    train_scores: np.ndarray     # (train pairs, len(scorers))
    towers: pd.DataFrame         # the contrastive towers tried, and their validation loss


def select_towers(cfg: config.SearchConfig, feats: Features, pairs: pd.DataFrame, split: dict[str, np.ndarray],
                  device: Any = None) -> tuple[Towers, pd.DataFrame, Scorer]:
    """The contrastive towers (size, dropout) of the config's grid with the lowest validation
    loss (InfoNCE on the val split's own-image pairs), each trained on the train split; the
    gallery (test) is never looked at. Returns the choice, the table of every try, and the
    chosen scorer, already fitted on the train split (no need to fit it again)."""
    rows, scorers = [], {}
    for dim in cfg.contrastive_dims:
        for dropout in cfg.contrastive_dropouts:
            scorer = fit_zero_shot("contrastive", cfg, feats, pairs, split["train"], split["val"], device, (dim, dropout))
            scorers[dim, dropout] = scorer
            rows.append({"dim": dim, "dropout": dropout, "val/loss": scorer.history.best_score,
                         "best_epoch": scorer.history.best_epoch})
    table = pd.DataFrame(rows)
    best = table.loc[table["val/loss"].idxmin()]
    towers = (int(best["dim"]), float(best["dropout"]))
    return towers, table, scorers[towers]


def fit_priors(cfg: config.SearchConfig, feats: Features, pairs: pd.DataFrame, split: dict[str, np.ndarray],
               device: Any = None) -> Priors:
    """Select the contrastive towers on validation, then fit both zero-shot scorers on the train
    split and cross-fit their scores of the training pairs."""
    tr, va = split["train"], split["val"]
    towers, table, contrastive = select_towers(cfg, feats, pairs, split, device)
    scorers = {kind: contrastive if kind == "contrastive" else fit_zero_shot(kind, cfg, feats, pairs, tr, va, device)
               for kind in ZERO_SHOT}   # the chosen towers are already fitted on the train split
    scores = np.column_stack([crossfit(kind, cfg, feats, pairs, tr, va, device, towers) for kind in ZERO_SHOT])
    return Priors(scorers, scores, table)


def fit_net(kind: str, cfg: config.SearchConfig, feats: Features, target: np.ndarray, split: dict[str, np.ndarray],
            priors: Priors | None = None, device: Any = None, run: Any = None, progress: bool = False) -> NetScorer:
    """Train the "mlp" (joined vectors) or the "interaction" network (needs ``priors``) on the
    train split."""
    seed_everything(cfg.seed)   # the same initial weights on every run
    d_img, d_txt = feats.train_images.shape[1], feats.queries.shape[1]
    tr, va = split["train"], split["val"]
    if kind == "mlp":
        scorer = NetScorer(kind, ConcatMLP(d_img, d_txt, cfg.hidden_dim, cfg.dropout))
        train_prior = None
    else:
        if priors is None:
            raise ValueError("the interaction network needs the fitted zero-shot priors (fit_priors)")
        scorer = NetScorer(kind, InteractionMLP(d_img, d_txt, cfg.proj_dim, cfg.hidden_dim, cfg.dropout,
                                                n_priors=len(priors.scorers)),
                           priors=list(priors.scorers.values()))
        train_prior = priors.train_scores
    return scorer.fit(*feats.pairs(tr), target[tr], (*feats.pairs(va), target[va]), epochs=cfg.epochs, lr=cfg.lr,
                      weight_decay=cfg.weight_decay, batch_size=cfg.batch_size, patience=cfg.patience,
                      seed=cfg.seed, train_prior=train_prior, device=device,
                      run=run and _Prefixed(run, kind), progress=progress)


def evaluate(exp: Experiment, name: str, scorer: Scorer) -> None:
    """Val/test regression metrics (against the experts' target) and gallery search metrics."""
    expert = expert_target(exp.data.pairs[EXPERTS].to_numpy())
    if name not in ZERO_SHOT:
        for part in ("val", "test"):
            rows = exp.split[part]
            exp.metrics.update(regression_metrics(expert[rows], scorer.predict(*exp.features.pairs(rows)),
                                                  f"{name}/{part}"))
    scores = scorer.score_gallery(exp.features.test_images, exp.features.test_queries)
    own = exp.data.test_queries.image.map({n: j for j, n in enumerate(exp.data.test_images)}).to_numpy()
    ranking, per_query = ranking_metrics(scores, gallery_gains(exp.data), own, f"{name}/test")
    exp.metrics.update(ranking)
    exp.per_query[name] = per_query


def run_experiment(cfg: config.SearchConfig, *, device: Any = None, run: Any = None, progress: bool = False,
                   prepared: tuple | None = None) -> Experiment:
    """Train every model on the train split, pick the best learned one by validation R2,
    evaluate all on the test split and the gallery."""
    data, feats, split = prepared or prepare(cfg, device)
    target = blended_target(data.pairs, cfg.crowd_weight)
    exp = Experiment(cfg, data, feats, split, target)
    tr = split["train"]
    exp.models["dummy"] = DummyScorer().fit(*feats.pairs(tr), target[tr])
    exp.models["linear"] = LinearScorer(cfg.linear_alpha).fit(*feats.pairs(tr), target[tr])
    exp.priors = fit_priors(cfg, feats, data.pairs, split, device)
    for kind in ("mlp", "interaction"):
        exp.models[kind] = fit_net(kind, cfg, feats, target, split, exp.priors, device, run, progress)
    exp.models.update(exp.priors.scorers)
    for name, scorer in exp.models.items():
        evaluate(exp, name, scorer)
    exp.best = max(LEARNED, key=lambda n: exp.metrics[f"{n}/val/r2"])
    return exp


def crowd_blend_effect(exp: Experiment, weights: tuple[float, ...] = (0.0, 0.25, 0.5), kind: str | None = None,
                       device: Any = None) -> pd.DataFrame:
    """Retrain one model kind on targets blended with the crowd share (the run's own weight
    keeps its model and metrics); every row is scored against the experts' target, so the rows
    compare like with like."""
    kind = kind or exp.best
    rows = []
    for w in weights:
        if w == exp.cfg.crowd_weight:   # the run's own target: nothing to refit or rescore
            metrics = exp.metrics
        else:
            target = blended_target(exp.data.pairs, w)
            if kind == "linear":
                scorer: Scorer = LinearScorer(exp.cfg.linear_alpha).fit(*exp.features.pairs(exp.split["train"]),
                                                                        target[exp.split["train"]])
            else:
                scorer = fit_net(kind, exp.cfg, exp.features, target, exp.split, exp.priors, device)
            probe = Experiment(exp.cfg, exp.data, exp.features, exp.split, target)
            evaluate(probe, kind, scorer)
            metrics = probe.metrics
        prefix = f"{kind}/test/"
        rows.append({"crowd weight": w, **{k[len(prefix):]: v for k, v in metrics.items() if k.startswith(prefix)}})
    return pd.DataFrame(rows).set_index("crowd weight")


# --- the search ----------------------------------------------------------------------------
def top_k(scorer: Scorer, gallery: np.ndarray, names: list[str], query_vectors: np.ndarray, k: int) -> list[pd.DataFrame]:
    """For each query vector, the k best gallery images with their scores."""
    scores = scorer.score_gallery(gallery, query_vectors)
    out = []
    for row in scores:
        best = np.argsort(-row, kind="stable")[:k]
        out.append(pd.DataFrame({"image": [names[j] for j in best], "score": row[best]}))
    return out


def search_texts(exp: Experiment, queries: list[str], k: int | None = None, model: str | None = None) -> list[pd.DataFrame]:
    """Score every test image for each query text with the best (or named) model."""
    vectors = embed_texts(exp.cfg, list(queries))
    return top_k(exp.models[model or exp.best], exp.features.test_images, exp.data.test_images, vectors,
                 k or exp.cfg.top_k)


def model_path(cfg: config.SearchConfig, data: CourseSearchData) -> Path:
    key = cache.fingerprint(cfg.to_dict(), str(data.root), len(data.pairs), data.test_images)
    return config.SEARCH_MODELS_DIR / f"search-{key}.joblib"


def save_best(exp: Experiment) -> Path:
    """Store the best model (a pickle of our own objects, read back only by load_or_train)."""
    import joblib

    return atomic_write(model_path(exp.cfg, exp.data),
                        lambda tmp: joblib.dump({"name": exp.best, "scorer": exp.models[exp.best]}, tmp))


def load_or_train(cfg: config.SearchConfig, device: Any = None) -> tuple[Scorer, CourseSearchData, Features]:
    """The best model for these settings: from models/search/ if trained before, else trained now."""
    import joblib

    data, feats, split = prepare(cfg, device)
    path = model_path(cfg, data)
    if path.exists():
        try:
            return joblib.load(path)["scorer"], data, feats
        except Exception as err:  # a stale or broken pickle is retrained, not trusted
            print(f"ignoring unreadable model {path}: {err}")
    exp = run_experiment(cfg, device=device, prepared=(data, feats, split))
    save_best(exp)
    return exp.models[exp.best], data, feats


def search(query: str, k: int | None = None, cfg: config.SearchConfig | None = None, device: Any = None) -> pd.DataFrame:
    """The k test images that fit ``query`` best, with their scores."""
    if not query or not query.strip():
        raise ValueError("the query is empty")
    cfg = cfg or config.get("search")
    scorer, data, feats = load_or_train(cfg, device)
    vectors = text_encoder(cfg.text_encoder).encode([query])
    return top_k(scorer, feats.test_images, data.test_images, vectors, k or cfg.top_k)[0]


def run(cfg: config.SearchConfig) -> dict[str, float]:
    """Train and evaluate every model; store the best for ``python -m cvtasks search``."""
    from cvtasks.tracking import Run

    with Run("search", cfg) as tracker:
        exp = run_experiment(cfg, run=tracker)
        tracker.log_table("search/models", exp.table().reset_index(names="model"))
        tracker.summary(exp.summary())
    save_best(exp)
    return exp.summary()
