"""Measuring the brand models: metrics per split, intervals by bootstrap over product models
(and over training seeds), a paired comparison of two models on the same resampled models, the
colour-histogram baseline, and the penultimate-layer embeddings."""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import silhouette_samples
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from cvtasks.brands.data import BrandData
from cvtasks.metrics import classification_metrics, fast_macro_f1, per_class_table
from cvtasks.runtime import one_thread
from cvtasks.stats import Interval, resamples

SPLITS = ("train", "val", "test")


def split_metrics(probs: np.ndarray, data: BrandData, prefix: str = "") -> dict[str, float]:
    """Accuracy, balanced accuracy, macro-F1, top-3 and the worst class, for every split."""
    out = {}
    for name in SPLITS:
        i = data.idx(name)
        if len(i):
            out.update(classification_metrics(data.labels[i], probs[i], prefix=f"{prefix}{name}"))
    return out


def seeds_models_interval(preds: Sequence[np.ndarray], data: BrandData, part: str, *, count: int,
                          seed: int = 0) -> Interval:
    """Mean over seeds of macro-F1 on ``part``, with its interval: each resample draws the product
    models (all their images come along) and the seeds with replacement."""
    rows, y = data.idx(part), data.labels[data.idx(part)]
    k = len(data.classes)
    preds = [np.asarray(p)[rows] for p in preds]
    rng = np.random.default_rng(seed + 1)
    values = []
    for r in resamples(len(rows), data.groups[rows], count=count, seed=seed):
        drawn = rng.integers(0, len(preds), len(preds))
        values.append(np.mean([fast_macro_f1(y[r], preds[j][r], k) for j in drawn]))
    value = float(np.mean([fast_macro_f1(y, p, k) for p in preds]))
    return Interval(value, *map(float, np.percentile(values, [2.5, 97.5])))


def paired_difference(preds_a: Sequence[np.ndarray], preds_b: Sequence[np.ndarray], data: BrandData, part: str, *,
                      count: int, seed: int = 0) -> Interval:
    """Macro-F1 of a minus b (means over seeds) on the same resampled product models."""
    rows, y = data.idx(part), data.labels[data.idx(part)]
    k = len(data.classes)
    a = [np.asarray(p)[rows] for p in preds_a]
    b = [np.asarray(p)[rows] for p in preds_b]

    def diff(r: np.ndarray) -> float:
        return float(np.mean([fast_macro_f1(y[r], p[r], k) for p in a]) - np.mean([fast_macro_f1(y[r], p[r], k) for p in b]))

    values = [diff(r) for r in resamples(len(rows), data.groups[rows], count=count, seed=seed)]
    return Interval(diff(np.arange(len(rows))), *map(float, np.percentile(values, [2.5, 97.5])))


# --- the colour baseline -------------------------------------------------------------------------
def color_histograms(images: np.ndarray, bins: int) -> np.ndarray:
    """Joint RGB histograms (bins^3 per image), normalised to sum 1."""
    q = (images.reshape(len(images), -1, 3).astype(np.int32) * bins) // 256
    codes = (q[..., 0] * bins + q[..., 1]) * bins + q[..., 2]
    hist = np.stack([np.bincount(c, minlength=bins ** 3) for c in codes]).astype(np.float32)
    return hist / hist.sum(1, keepdims=True)


def color_histogram_baseline(data: BrandData, bins: int, c: float, seed: int) -> np.ndarray:
    """Logistic regression on colour histograms, fitted on train; class probabilities of every
    image (each split measured on its own rows)."""
    hist = np.sqrt(color_histograms(data.images, bins))   # Hellinger: tames the dominant bins
    tr = data.idx("train")
    model = make_pipeline(StandardScaler(), LogisticRegression(C=c, max_iter=2000, class_weight="balanced",
                                                               random_state=seed))
    with one_thread():
        model.fit(hist[tr], data.labels[tr])
    probs = np.zeros((len(hist), len(data.classes)))
    probs[:, model.classes_] = model.predict_proba(hist)
    return probs


# --- embeddings ----------------------------------------------------------------------------------
def silhouette_interval(embeddings: np.ndarray, labels: np.ndarray, groups: np.ndarray, *, count: int,
                        seed: int) -> Interval:
    """The brands' silhouette (cosine) in an embedding, and the interval of the mean per-image
    silhouette over resampled product models."""
    per_image = silhouette_samples(embeddings, labels, metric="cosine")
    values = [per_image[r].mean() for r in resamples(len(labels), groups, count=count, seed=seed)]
    return Interval(float(per_image.mean()), *map(float, np.percentile(values, [2.5, 97.5])))


def umap_2d(embeddings: np.ndarray, n_neighbors: int, seed: int) -> np.ndarray:
    import umap

    reducer = umap.UMAP(n_neighbors=min(n_neighbors, len(embeddings) - 1), min_dist=0.2, metric="cosine",
                        random_state=seed, n_jobs=1)
    return reducer.fit_transform(embeddings)


def data_metrics(data: BrandData) -> dict[str, float]:
    counts = np.bincount(data.labels, minlength=len(data.classes))
    out = {"data/n_images": len(data.labels), "data/n_brands": len(data.classes),
           "data/n_models": len(np.unique(data.groups)), "data/skipped_files": len(data.skipped),
           "data/imbalance_ratio": float(counts.max() / max(counts.min(), 1))}
    for part in SPLITS:
        out[f"{part}/n_models"] = data.models_in(part)
        out[f"{part}/n_images"] = len(data.idx(part))
        out[f"{part}/n_brands"] = len(np.unique(data.labels[data.idx(part)]))
    return out


def per_class(probs: np.ndarray, data: BrandData, split: str = "test") -> pd.DataFrame:
    i = data.idx(split)
    return per_class_table(data.labels[i], probs[i].argmax(1), data.classes)
