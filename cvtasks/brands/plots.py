"""Figures of Image.ipynb: pure functions of results (nothing is fitted here)."""
from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd

from cvtasks.brands.data import BrandData
from cvtasks.brands.labelling import Session
from cvtasks.plots import image_grid
from cvtasks.stats import Interval


def sample_grid(data: BrandData, per_brand: int = 6, seed: int = 0):
    """``per_brand`` photos of each brand, one row per brand, the brand at the left."""
    import matplotlib.pyplot as plt

    rng = np.random.default_rng(seed)
    fig, axes = plt.subplots(len(data.classes), per_brand, figsize=(1.3 * per_brand + 1.6, 1.3 * len(data.classes)),
                             squeeze=False)
    for b, name in enumerate(data.classes):
        idx = np.flatnonzero(data.labels == b)
        picks = rng.choice(idx, size=min(per_brand, len(idx)), replace=False)
        for j, ax in enumerate(axes[b]):
            ax.set_xticks([])
            ax.set_yticks([])
            if j < len(picks):
                ax.imshow(data.images[picks[j]])
        axes[b, 0].set_ylabel(name, rotation=0, ha="right", va="center", fontsize=9)
    fig.tight_layout()
    return fig


def curves(trained: Mapping[str, object]):
    """Train and validation macro-F1 per epoch of each model (first seed)."""
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(trained), figsize=(4 * len(trained), 3), squeeze=False)
    for ax, (name, t) in zip(axes[0], trained.items()):
        frame = pd.DataFrame(t.history.epochs)
        for key, style in (("train/macro_f1", "--"), ("val/macro_f1", "-")):
            ax.plot(frame.epoch, frame[key], style, marker="o", ms=3, label=key)
        ax.axvline(t.history.best_epoch, color="k", lw=0.8, ls=":")
        ax.set_title(f"{name} (seed {t.seed}; dotted: best epoch)", fontsize=9)
        ax.set_xlabel("epoch")
        ax.grid(alpha=0.3)
    axes[0, 0].legend(fontsize=8)
    fig.tight_layout()
    return fig


def intervals(rows: Mapping[str, Interval], target: float | None = None, xlabel: str = "test macro-F1"):
    """Each model's figure with its 95 % interval, one line each."""
    import matplotlib.pyplot as plt

    names = list(rows)
    fig, ax = plt.subplots(figsize=(6.5, 0.45 * len(names) + 1.1))
    for k, name in enumerate(names):
        iv = rows[name]
        ax.errorbar(iv.value, k, xerr=[[iv.value - iv.low], [iv.high - iv.value]], fmt="o", capsize=3)
        ax.text(iv.high + 0.01, k, f"{iv.value:.3f} [{iv.low:.3f}, {iv.high:.3f}]", va="center", fontsize=8)
    if target is not None:
        ax.axvline(target, color="k", ls=":", lw=1)
    ax.set_yticks(range(len(names)), names)
    ax.invert_yaxis()
    ax.set_xlim(0, 1.25)
    ax.set_xlabel(f"{xlabel} (95 % interval: product models and seeds resampled)")
    ax.grid(alpha=0.3, axis="x")
    fig.tight_layout()
    return fig


def mistakes_gallery(data: BrandData, probs: np.ndarray, split: str = "test", limit: int = 16):
    """The most confident mistakes on ``split``: the photo, the true and the predicted brand."""
    i = data.idx(split)
    wrong = i[probs[i].argmax(1) != data.labels[i]]
    wrong = wrong[np.argsort(-probs[wrong].max(1))][:limit]
    if len(wrong) == 0:
        return None
    titles = [f"{data.classes[data.labels[j]]}\n-> {data.classes[probs[j].argmax()]} {probs[j].max():.2f}"
              for j in wrong]
    return image_grid([data.images[j] for j in wrong], titles, ncols=8, size=1.5)


def umap_pair(points: Mapping[str, np.ndarray], labels: np.ndarray, classes: Sequence[str],
              silhouettes: Mapping[str, Interval]):
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(points), figsize=(5.6 * len(points), 4.6), squeeze=False)
    cmap = plt.get_cmap("tab10")
    for ax, (key, p) in zip(axes[0], points.items()):
        for b, name in enumerate(classes):
            m = labels == b
            ax.scatter(p[m, 0], p[m, 1], s=8, color=cmap(b % 10), label=name, alpha=0.8)
        ax.set_title(f"{key} training: silhouette {silhouettes[key]}", fontsize=9)
        ax.set_xticks([])
        ax.set_yticks([])
    axes[0, -1].legend(fontsize=7, markerscale=1.5, loc="center left", bbox_to_anchor=(1.0, 0.5))
    fig.tight_layout()
    return fig


def al_curves(sessions: Mapping[str, Sequence[Session]], full_accuracy: float, target: float, pool_size: int):
    """Validation accuracy against labels asked for: mean over seeds and the middle 95 % band."""
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7.5, 4))
    for strategy, runs in sessions.items():
        n = min(len(s.val_accuracy) for s in runs)
        acc = np.array([s.val_accuracy[:n] for s in runs])
        x = np.mean([s.n_labels[:n] for s in runs], axis=0)
        line, = ax.plot(x, acc.mean(0), marker=".", label=f"{strategy} ({len(runs)} seeds)",
                        ls="--" if strategy == "random" else "-")
        lo, hi = np.percentile(acc, [2.5, 97.5], axis=0)
        ax.fill_between(x, lo, hi, color=line.get_color(), alpha=0.12, lw=0)
    ax.axhline(full_accuracy, color="k", lw=0.8, label=f"all {pool_size} pool labels")
    ax.axhline(target * full_accuracy, color="k", lw=0.8, ls=":", label=f"{target:.0%} of that")
    ax.set_xlabel("labels asked for")
    ax.set_ylabel("validation accuracy")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, loc="lower right")
    fig.tight_layout()
    return fig


def coverage_plot(curves: Mapping[str, pd.DataFrame], threshold_point: tuple[float, float] | None = None):
    """Auto-label accuracy against the share of the pool auto-labelled, most confident first."""
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5.5, 3.6))
    for name, frame in curves.items():
        ax.plot(frame.coverage, frame.accuracy, marker=".", label=name)
    if threshold_point is not None:
        ax.plot(*threshold_point, "ko", label="confidence threshold")
    ax.set_xlabel("share of the pool auto-labelled (most confident first)")
    ax.set_ylabel("accuracy of the auto-labels")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    return fig
