"""The search a user runs: ``python -m cvtasks search "a red car"``.

The task saves the served ranker (the one chosen on validation), its calibration and its
"no good match" threshold with the test gallery's vectors, titles and files; a search embeds the
query, scores the gallery, and prints the best drawings with calibrated scores, or says that
nothing fits. Bad queries get a clear answer, not a traceback.
"""
from __future__ import annotations

import unicodedata
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

import config
from cvtasks.io import atomic_write
from cvtasks.search.calibration import nomatch_statistics, text_evidence
from cvtasks.search.scorers import blend

MAX_QUERY_CHARS = 300      # the sentence encoder reads 256 word pieces; longer text is cut there anyway


class QueryError(ValueError):
    """A query the search cannot answer; the message says why."""


@dataclass
class Bundle:
    """What the search needs, saved by the task: the ranker's scorers and how to combine them."""

    ranker: str
    scorers: dict[str, Any]      # name -> fitted scorer (the ranker, or the two halves of a blend)
    weights: dict[str, float]    # z-score weights per scorer (one scorer: weight 1)
    calibrator: Any
    threshold: float             # "no good match" below it ...
    statistic: str               # ... of this statistic (cvtasks.search.calibration.nomatch_statistics)
    gallery: np.ndarray          # image vectors
    files: list[str]
    titles: list[str]
    folder: str
    text_encoder: str
    texts: Any = None            # the gallery's own text (calibration.GalleryText), for the query-side statistic

    def raw_scores(self, query_vectors: np.ndarray) -> np.ndarray:
        """(queries, gallery) scores: one scorer's own, or a weighted sum of z-scored ones."""
        if len(self.scorers) == 1:
            (scorer,) = self.scorers.values()
            return scorer.score_gallery(self.gallery, query_vectors)
        return blend({name: scorer.score_gallery(self.gallery, query_vectors)
                      for name, scorer in self.scorers.items()}, self.weights)

    def scored(self, query_vectors: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Calibrated (queries, gallery) scores, whether each query finds a good match, and the
        gallery's order for each query, best first. The order follows the ranker's own scores:
        the calibration is a step function, so drawings it ties keep the ranker's order."""
        raw = self.raw_scores(query_vectors)
        calibrated = self.calibrator.predict(raw.ravel()).reshape(raw.shape)
        evidence = text_evidence(query_vectors, self.texts) if self.texts is not None else None
        found = nomatch_statistics(raw, calibrated, evidence)[self.statistic] >= self.threshold
        return calibrated, found, np.argsort(-raw, axis=1, kind="stable")


def bundle_path(cfg: config.SearchConfig) -> Path:
    return cfg.paths.models / "search" / ("quick" if cfg.quick else "full") / "search.joblib"


def save(bundle: Bundle, path: Path) -> Path:
    """A pickle of our own objects, read back only by ``load`` (joblib)."""
    import joblib

    return atomic_write(path, lambda tmp: joblib.dump(bundle, tmp))


def load(path: Path) -> Bundle:
    import joblib

    if not path.exists():
        raise FileNotFoundError(f"no trained search at {path}: run `python -m cvtasks run search` first "
                                "(add --quick for the quick model)")
    return joblib.load(path)


def check_query(text: str) -> tuple[str, list[str]]:
    """The query as it will be searched, and notes for the user; QueryError when it cannot be."""
    notes = []
    text = " ".join((text or "").split())
    if not text:
        raise QueryError("the query is empty: type a few words, e.g. \"a red car\"")
    letters = [c for c in text if c.isalpha()]
    if not letters:
        raise QueryError("the query has no letters; describe a picture in words, e.g. \"a red car\"")
    latin = sum("LATIN" in unicodedata.name(c, "") for c in letters) / len(letters)
    if latin < 0.5:
        raise QueryError("the query is mostly in a non-Latin script; the text encoder (all-MiniLM-L6-v2) was "
                         "trained on English and would not understand it: please search in English")
    if len(text) > MAX_QUERY_CHARS:
        notes.append(f"the query was cut to its first {MAX_QUERY_CHARS} characters")
        text = text[:MAX_QUERY_CHARS]
    return text, notes


def search(query: str, bundle: Bundle, k: int) -> tuple[pd.DataFrame, list[str]]:
    """The k best gallery drawings (calibrated score, title, file), an empty frame when even the
    best falls below the "no good match" threshold, and notes for the user."""
    # torch and the sentence encoder (seconds): loaded once the query has passed its checks
    from cvtasks.search.features import text_encoder

    if k < 1:
        raise QueryError(f"k = {k}: must be >= 1")
    text, notes = check_query(query)
    scores, found, order = bundle.scored(text_encoder(bundle.text_encoder).encode([text]))
    scores, best = scores[0], order[0, :k]
    hits = pd.DataFrame({"score": scores[best], "title": [bundle.titles[j] for j in best],
                         "file": [str(Path(bundle.folder) / bundle.files[j]) for j in best]})
    if not found[0]:
        notes.append(f"nothing fits: no good match in this gallery ({bundle.statistic} below the threshold "
                     "chosen on validation)")
        return hits.iloc[:0], notes
    return hits, notes
