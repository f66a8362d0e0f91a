"""The search task's data: annotated training pairs, and a validation and a test gallery, each
with its queries (new, seen, no-match) and the votes on its (query, image) pairs.

The embedded default is built from Open Clip Art (cvtasks.data.openclipart) with its galleries.
A folder in the course layout without them gets its validation gallery (and, without test
votes, its test gallery) carved from the training pairs: whole images and whole query texts go
to one side (``carve``).
"""
from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

import config
from cvtasks.data import course_search, openclipart
from cvtasks.data.course_search import CourseSearchData
from cvtasks.data.grouping import groups_by_shared_keys
from cvtasks.data.openclipart import normalise_text

EXPERTS = ["expert_1", "expert_2", "expert_3"]


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


@dataclass
class Gallery:
    """One evaluation split: its images, its queries and the votes on its pairs."""

    split: str
    folder: Path
    images: list[str]
    queries: pd.DataFrame          # query_id, query_text, image (own image or ""), kind
    votes: pd.DataFrame            # image, query_id, expert_1..3
    recipe: pd.DataFrame | None = None   # image, query_id: the pairs the training recipe would draw

    def of_kind(self, kind: str) -> pd.DataFrame:
        return self.queries[self.queries.kind == kind].reset_index(drop=True)

    def described(self, text: str) -> int:
        """How many of the gallery's drawings have a query text holding every word of ``text``
        (articles aside): whether a free-text search has anything to find here."""
        words = [w for w in re.findall(r"[a-z0-9]+", text.lower()) if w not in ("a", "an", "the")]
        own = self.queries[self.queries.image != ""]
        hit = own.query_text.str.lower().map(lambda t: all(re.search(rf"\b{w}\b", t) for w in words))
        return int(own.image[hit].nunique())

    def titles(self) -> dict[str, str]:
        """Each image's title: its own first query text."""
        own = self.queries[self.queries.kind == "new"]
        return dict(zip(own.image, own.query_text))

    def gains(self, queries: pd.DataFrame) -> np.ndarray:
        """(queries, images) expert target of the voted pairs, 0 for pairs nobody voted on."""
        col = {n: j for j, n in enumerate(self.images)}
        row = {q: i for i, q in enumerate(queries.query_id)}
        votes = self.votes[self.votes.query_id.isin(row) & self.votes.image.isin(col)]
        gains = np.zeros((len(row), len(col)))
        gains[votes.query_id.map(row).to_numpy(), votes.image.map(col).to_numpy()] = expert_target(
            votes[EXPERTS].to_numpy())
        return gains

    def pairs(self, queries: pd.DataFrame, recipe: bool = False) -> pd.DataFrame:
        """The voted pairs of ``queries`` (``recipe``: only those the training recipe would draw,
        when the folder says which), with their target, query and image rows."""
        out = self.votes[self.votes.query_id.isin(set(queries.query_id))]
        if recipe and self.recipe is not None:
            out = out.merge(self.recipe, on=["image", "query_id"])
        out = out.reset_index(drop=True)
        out = out.assign(target=expert_target(out[EXPERTS].to_numpy()))
        out["query_row"] = out.query_id.map({q: i for i, q in enumerate(queries.query_id)})
        out["image_row"] = out.image.map({n: j for j, n in enumerate(self.images)})
        return out


@dataclass
class SearchData:
    root: Path
    train: pd.DataFrame            # image, query_id, query_text, expert_1..3, share, n_yes, n_no
    train_images: list[str]
    val: Gallery
    test: Gallery
    built: dict = field(default_factory=dict)   # the builder's manifest (duplicates, held-out categories)

    def image_path(self, name: str, split: str) -> Path:
        return self.root / f"{split}_images" / name if split != "carved" else self.root / "train_images" / name


def load_data(cfg: config.SearchConfig) -> SearchData:
    """The user's folder when ``cfg.dataset_dir`` is set, else the Open Clip Art build."""
    if cfg.dataset_dir is not None:
        raw = course_search.load(cfg.dataset_dir)
    else:
        root = openclipart.ensure_built(openclipart.BuildSettings.from_config(cfg), cfg.paths.data / "search")
        raw = course_search.load(root)
    return from_layout(raw, cfg)


def from_layout(raw: CourseSearchData, cfg: config.SearchConfig) -> SearchData:
    manifest = raw.root / "build.json"
    built = json.loads(manifest.read_text()) if manifest.exists() else {}
    train = raw.pairs
    if raw.val_queries is not None:
        val = Gallery("val", raw.root / "val_images", raw.val_images, raw.val_queries, raw.val_votes,
                      _recipe(raw.root, "val"))
    else:
        train, val = carve(train, "val", cfg.val_fraction, cfg.seed, raw.root / "train_images")
    if raw.test_votes is not None:
        test = Gallery("test", raw.root / "test_images", raw.test_images, raw.test_queries, raw.test_votes,
                       _recipe(raw.root, "test"))
    else:
        train, test = carve(train, "test", cfg.val_fraction, cfg.seed + 1, raw.root / "train_images")
    return SearchData(raw.root, train.reset_index(drop=True), sorted(set(train.image)), val, test, built)


def _recipe(root: Path, split: str) -> pd.DataFrame | None:
    path = root / f"{split}_recipe.tsv"
    return pd.read_csv(path, sep="\t", dtype=str) if path.exists() else None


def carve(pairs: pd.DataFrame, split: str, fraction: float, seed: int, folder: Path) -> tuple[pd.DataFrame, Gallery]:
    """A gallery cut from annotated training pairs: whole groups of images and query texts that
    share pairs (so that neither an image nor a text is on both sides)."""
    labels = groups_by_shared_keys(zip(pairs.image, pairs.query_text.map(normalise_text)), len(pairs))
    order = np.random.default_rng(seed).permutation(np.unique(labels))
    taken, target, chosen = 0, fraction * len(pairs), set()
    for g in order:
        if taken >= target:
            break
        chosen.add(int(g))
        taken += int((labels == g).sum())
    out = np.isin(labels, list(chosen))
    held = pairs[out]
    queries = held.drop_duplicates("query_id")[["query_id", "query_text"]].reset_index(drop=True)
    own = queries.query_id.str.rsplit("#", n=1).str[0]
    images = sorted(set(held.image))
    queries["image"] = np.where(own.isin(images), own, "")
    queries["kind"] = "new"
    votes = held[["image", "query_id", *EXPERTS]].reset_index(drop=True)
    return pairs[~out], Gallery(split, folder, images, queries, votes)


# --- the leakage audit -----------------------------------------------------------------------------
def fingerprints(path: Path) -> tuple[str, bytes, float]:
    """The SHA-256 of an image's decoded pixels and the builder's ink thumbnail of it."""
    from PIL import Image

    with Image.open(path) as im:
        rgb = im.convert("RGB")
        return (hashlib.sha256(rgb.tobytes()).hexdigest(), *openclipart.thumbnail(rgb))


def split_files(data: SearchData) -> dict[str, dict[str, list[str]]]:
    """split.json: each split's image paths (relative to the repository root when inside it)
    and query texts (val and test: their new queries)."""
    def rel(path: Path) -> str:
        return str(path.relative_to(config.ROOT)) if path.is_relative_to(config.ROOT) else str(path)

    out = {"train": {"images": [rel(data.root / "train_images" / n) for n in data.train_images],
                     "queries": sorted(set(data.train.query_text))}}
    for g in (data.val, data.test):
        out[g.split] = {"images": [rel(g.folder / n) for n in g.images],
                        "queries": sorted(set(g.of_kind("new").query_text))}
    return out


def rule_relevance(data: SearchData, split: str, pairs: pd.DataFrame) -> np.ndarray | None:
    """The relevance by the rule that made the embedded default's votes, for ``pairs`` (None for a
    dataset without ``<split>_relevance.tsv``): a perfect follower of that rule, the ceiling."""
    path = data.root / f"{split}_relevance.tsv"
    if not path.exists():
        return None
    rel = pd.read_csv(path, sep="\t").set_index(["query_id", "image"]).relevance
    return rel.reindex(list(zip(pairs.query_id, pairs.image))).to_numpy(dtype=float)


def cross_split_audit(data: SearchData) -> dict[str, int]:
    """Images on two sides of the split that are byte-identical or near-duplicates (the builder's
    ink thumbnails), and new-query texts of val / test that are texts of another split."""
    sides = {"train": [data.root / "train_images" / n for n in data.train_images],
             "val": [data.val.folder / n for n in data.val.images],
             "test": [data.test.folder / n for n in data.test.images]}
    prints = {k: [fingerprints(p) for p in v] for k, v in sides.items()}
    fps, side = [f for fp in prints.values() for f in fp], np.array([k for k, fp in prints.items() for _ in fp])
    copies = openclipart.duplicate_groups([f[0] for f in fps], [f[1] for f in fps], [f[2] for f in fps])
    crossing = sum(len(set(side[copies == g])) - 1 for g in np.unique(copies))
    texts = {"train": {normalise_text(t) for t in data.train.query_text}}
    for g in (data.val, data.test):
        texts[g.split] = {normalise_text(t) for t in g.of_kind("new").query_text}
    shared = len(texts["test"] & (texts["train"] | texts["val"])) + len(texts["val"] & texts["train"])
    return {"data/cross_split_duplicates": int(crossing), "data/cross_split_queries": shared}


def similar_across_splits(image_vectors: dict[str, np.ndarray], near_cosine: float) -> int:
    """A second look at the split: image pairs on two sides whose vectors have cosine >=
    ``near_cosine`` (similar drawings, not necessarily copies)."""
    unit = {k: v / np.linalg.norm(v, axis=1, keepdims=True) for k, v in image_vectors.items()}
    names = list(unit)
    return sum(int(((unit[a] @ unit[b].T) >= near_cosine).sum()) for i, a in enumerate(names) for b in names[i + 1:])
