"""Frozen vectors of the search task, cached: efficientnet_lite0 image vectors (resnet50 online)
and all-MiniLM-L6-v2 sentence vectors (distilbert-base-uncased online)."""
from __future__ import annotations

import functools
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

import config
from cvtasks import cache
from cvtasks.data.course_search import load_image
from cvtasks.models import create_image_encoder, create_text_encoder
from cvtasks.search.data import SearchData


@functools.lru_cache(maxsize=2)
def image_encoder(name: str):
    return create_image_encoder(name)


@functools.lru_cache(maxsize=2)
def text_encoder(name: str):
    return create_text_encoder(name)


def embed_folder(cfg: config.SearchConfig, folder: Path, names: list[str], device: Any = None) -> np.ndarray:
    """Image vectors of ``folder/<name>``, cached by encoder, folder and file sizes."""
    files = [(n, (folder / n).stat().st_size) for n in names]
    key = {"folder": str(folder), "files": cache.fingerprint(files), "n": len(files), "alpha": "white"}
    return cache.image_embeddings(image_encoder(cfg.image_encoder), lambda: [load_image(folder / n) for n in names],
                                  key, device=device, cache_dir=cfg.paths.cache)


def embed_texts(cfg: config.SearchConfig, texts: list[str]) -> np.ndarray:
    return cache.text_embeddings(text_encoder(cfg.text_encoder), list(texts), cache_dir=cfg.paths.cache)


@dataclass
class Features:
    """Vectors of every image and query, and the training pairs' rows in them."""

    train_images: np.ndarray        # (len(data.train_images), d_img)
    train_queries: np.ndarray       # one row per training query id
    pair_image: np.ndarray          # training pair -> row of train_images
    pair_query: np.ndarray          # training pair -> row of train_queries
    gallery: dict[str, np.ndarray]  # split -> (len(gallery.images), d_img)
    queries: dict[str, np.ndarray]  # split -> (len(gallery.queries), d_txt)

    def train_pairs(self, rows: np.ndarray | slice = slice(None)) -> tuple[np.ndarray, np.ndarray]:
        return self.train_images[self.pair_image[rows]], self.train_queries[self.pair_query[rows]]


def compute_features(cfg: config.SearchConfig, data: SearchData, device: Any = None) -> Features:
    queries = data.train.drop_duplicates("query_id")
    q_row = {qid: i for i, qid in enumerate(queries.query_id)}
    i_row = {name: i for i, name in enumerate(data.train_images)}
    return Features(
        train_images=embed_folder(cfg, data.root / "train_images", data.train_images, device),
        train_queries=embed_texts(cfg, queries.query_text.tolist()),
        pair_image=data.train.image.map(i_row).to_numpy(),
        pair_query=data.train.query_id.map(q_row).to_numpy(),
        gallery={g.split: embed_folder(cfg, g.folder, g.images, device) for g in (data.val, data.test)},
        queries={g.split: embed_texts(cfg, g.queries.query_text.tolist()) for g in (data.val, data.test)},
    )
