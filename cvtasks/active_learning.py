"""Active-learning labelling on cached embeddings: uncertainty sampling against random sampling.

A pool of images starts almost unlabelled. Each round a light classifier (logistic regression
on PCA-reduced backbone embeddings: a fit takes milliseconds, so a whole labelling session is
simulated in seconds) is trained on the labels so far, scores the unlabelled pool, and the
``batch`` images it is least sure about go to the annotator. The simulated annotator returns
the held-back true labels and counts how many it was asked for. Random sampling is the
baseline. Afterwards the classifier auto-labels the rest of the pool where it is confident,
and those labels are checked against the truth.

The fits run on one BLAS thread: on matrices this small, threads cost more than they save
(on two shared cores, twenty times more).
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
from sklearn.decomposition import PCA
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from threadpoolctl import threadpool_limits

STRATEGIES = ("least_confidence", "margin", "entropy", "random")


class SimulatedAnnotator:
    """Answers label queries from the held-back truth and counts them."""

    def __init__(self, truth: Sequence[int]):
        self._truth = np.asarray(truth)
        self.queries = 0

    def label(self, indices: Sequence[int]) -> np.ndarray:
        indices = np.asarray(indices, dtype=int)
        self.queries += len(indices)
        return self._truth[indices]


def uncertainty(probs: np.ndarray, strategy: str) -> np.ndarray:
    """How unsure each row of class probabilities is; larger means ask for it sooner."""
    if strategy == "least_confidence":
        return 1.0 - probs.max(1)
    if strategy == "margin":
        top2 = np.sort(probs, axis=1)[:, -2:] if probs.shape[1] > 1 else np.c_[np.zeros(len(probs)), probs]
        return -(top2[:, 1] - top2[:, 0])
    if strategy == "entropy":
        return -(probs * np.log(np.clip(probs, 1e-12, None))).sum(1)
    raise ValueError(f"unknown strategy {strategy!r}; known: {', '.join(STRATEGIES)}")


def light_classifier(pca_dims: int, seed: int):
    """Standardise, PCA, logistic regression: quick to refit every round."""
    return make_pipeline(StandardScaler(), PCA(n_components=pca_dims, random_state=seed),
                         LogisticRegression(C=0.5, max_iter=300))


def _fit(x: np.ndarray, y: np.ndarray, pca_dims: int, seed: int):
    dims = max(1, min(pca_dims, len(y) - 1, x.shape[1]))
    with threadpool_limits(limits=1):
        return light_classifier(dims, seed).fit(x, y)


def _predict_proba(model, x: np.ndarray, n_classes: int) -> np.ndarray:
    """Probabilities over all classes (classes not labelled yet get zero)."""
    out = np.zeros((len(x), n_classes))
    with threadpool_limits(limits=1):
        out[:, model.classes_] = model.predict_proba(x)
    return out


@dataclass
class Curve:
    """Test accuracy after each round of one labelling strategy."""

    strategy: str
    n_labels: list[int] = field(default_factory=list)
    accuracy: list[float] = field(default_factory=list)
    labelled: np.ndarray | None = None   # pool indices labelled by the end
    model: object = None                 # the classifier trained on them


def simulate(pool_x: np.ndarray, pool_y: np.ndarray, test_x: np.ndarray, test_y: np.ndarray, *,
             strategy: str, initial: int, batch: int, rounds: int, pca_dims: int, seed: int) -> Curve:
    """One labelling session: ``initial`` random labels, then ``rounds`` queries of ``batch``."""
    if strategy not in STRATEGIES:
        raise ValueError(f"unknown strategy {strategy!r}; known: {', '.join(STRATEGIES)}")
    if initial < 2 or initial > len(pool_y):
        raise ValueError(f"initial = {initial}: must lie between 2 and the pool size {len(pool_y)}")
    n_classes = int(max(pool_y.max(), test_y.max())) + 1
    rng = np.random.default_rng(seed)
    annotator = SimulatedAnnotator(pool_y)
    labelled = list(rng.choice(len(pool_y), size=initial, replace=False))
    known = list(annotator.label(labelled))
    while len(set(known)) < 2:   # a classifier needs two classes: keep asking at random
        extra = rng.choice(np.setdiff1d(np.arange(len(pool_y)), labelled))
        labelled.append(extra)
        known += list(annotator.label([extra]))
    curve = Curve(strategy)
    for step in range(rounds + 1):
        model = _fit(pool_x[labelled], np.array(known), pca_dims, seed)
        curve.n_labels.append(annotator.queries)
        curve.accuracy.append(float((_predict_proba(model, test_x, n_classes).argmax(1) == test_y).mean()))
        rest = np.setdiff1d(np.arange(len(pool_y)), labelled)
        if step == rounds or len(rest) == 0:
            break
        take = min(batch, len(rest))
        if strategy == "random":
            chosen = rng.choice(rest, size=take, replace=False)
        else:
            scores = uncertainty(_predict_proba(model, pool_x[rest], n_classes), strategy)
            chosen = rest[np.argsort(-scores, kind="stable")[:take]]
        labelled += list(chosen)
        known += list(annotator.label(chosen))
    curve.labelled, curve.model = np.array(labelled), model
    return curve


def full_label_accuracy(pool_x, pool_y, test_x, test_y, *, pca_dims: int, seed: int) -> float:
    """Test accuracy of the same light classifier trained on the whole labelled pool."""
    model = _fit(pool_x, pool_y, pca_dims, seed)
    n_classes = int(max(pool_y.max(), test_y.max())) + 1
    return float((_predict_proba(model, test_x, n_classes).argmax(1) == test_y).mean())


def autolabel(curve: Curve, pool_x: np.ndarray, pool_y: np.ndarray, threshold: float) -> dict[str, float]:
    """Label the rest of the pool where the final classifier is at least ``threshold`` sure.

    Returns the share of the unlabelled rest that got an auto-label, and the auto-labels'
    accuracy against the held-back truth.
    """
    rest = np.setdiff1d(np.arange(len(pool_y)), curve.labelled)
    if len(rest) == 0:
        return {"coverage": 0.0, "accuracy": float("nan"), "n_auto": 0, "n_rest": 0}
    probs = _predict_proba(curve.model, pool_x[rest], int(pool_y.max()) + 1)
    sure = probs.max(1) >= threshold
    predicted = probs.argmax(1)
    accuracy = float((predicted[sure] == pool_y[rest][sure]).mean()) if sure.any() else float("nan")
    return {"coverage": float(sure.mean()), "accuracy": accuracy, "n_auto": int(sure.sum()),
            "n_rest": int(len(rest))}


def compare(pool_x, pool_y, test_x, test_y, *, strategies: Sequence[str], initial: int, batch: int,
            rounds: int, pca_dims: int, seed: int, random_repeats: int = 1) -> dict[str, list[Curve]]:
    """Curves per strategy; random sampling is repeated with other seeds to average its luck."""
    out = {}
    for strategy in strategies:
        repeats = random_repeats if strategy == "random" else 1
        out[strategy] = [simulate(pool_x, pool_y, test_x, test_y, strategy=strategy, initial=initial,
                                  batch=batch, rounds=rounds, pca_dims=pca_dims, seed=seed + r)
                         for r in range(repeats)]
    return out


def mean_curve(curves: Sequence[Curve]) -> tuple[np.ndarray, np.ndarray]:
    """Label counts and the accuracy averaged over repeated sessions."""
    n = min(len(c.accuracy) for c in curves)
    return np.array(curves[0].n_labels[:n]), np.mean([c.accuracy[:n] for c in curves], axis=0)


def labels_to_reach(n_labels: np.ndarray, accuracy: np.ndarray, target: float) -> int | None:
    hit = np.flatnonzero(np.asarray(accuracy) >= target)
    return int(n_labels[hit[0]]) if len(hit) else None


def plot_curves(curves: dict[str, list[Curve]], full_accuracy: float, pool_size: int, ax=None):
    """Test accuracy against the number of labels, one line per strategy."""
    import matplotlib.pyplot as plt

    if ax is None:
        _, ax = plt.subplots(figsize=(6, 3.6))
    for strategy, runs in curves.items():
        n, acc = mean_curve(runs)
        label = strategy + (f" (mean of {len(runs)})" if len(runs) > 1 else "")
        ax.plot(n, acc, marker=".", label=label, linestyle="--" if strategy == "random" else "-")
    ax.axhline(full_accuracy, color="k", lw=0.8, label=f"all {pool_size} labels")
    ax.axhline(0.95 * full_accuracy, color="k", lw=0.8, ls=":", label="95 % of that")
    ax.axvline(0.25 * pool_size, color="grey", lw=0.8, ls="-.", label="25 % of the pool")
    ax.set_xlabel("labels asked for")
    ax.set_ylabel("test accuracy")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)
    return ax
