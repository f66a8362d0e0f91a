"""Figures of the spill report: reconstructions with error maps, score histograms, ROC curves."""
from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
from sklearn.metrics import roc_curve


def reconstruction_grid(images: Sequence[np.ndarray], recons: Sequence[np.ndarray],
                        maps: Sequence[np.ndarray], titles: Sequence[str], size: float = 1.5):
    """Three rows: the images, the autoencoder's reconstructions, the error maps (one shared
    colour scale, so that a hot spot means the same in every column)."""
    import matplotlib.pyplot as plt

    n = len(images)
    fig, axes = plt.subplots(3, n, figsize=(size * n, size * 3 + 0.3), squeeze=False)
    vmax = float(np.max([np.max(m) for m in maps]))
    for i in range(n):
        axes[0, i].imshow(images[i])
        axes[0, i].set_title(titles[i], fontsize=7)
        axes[1, i].imshow(recons[i])
        axes[2, i].imshow(maps[i], cmap="inferno", vmin=0, vmax=vmax)
    for ax in axes.flat:
        ax.set_xticks([])
        ax.set_yticks([])
    for row, name in enumerate(("image", "reconstruction", "error map")):
        axes[row, 0].set_ylabel(name, fontsize=8)
    fig.tight_layout()
    return fig


def score_histograms(scores: Mapping[str, np.ndarray], y: np.ndarray,
                     thresholds: Mapping[str, float] | None = None, class_names=("normal", "spill")):
    """One panel per score: its distribution on each class, with the chosen threshold."""
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(scores), figsize=(3.4 * len(scores), 2.6), squeeze=False)
    for ax, (name, s) in zip(axes[0], scores.items()):
        bins = np.linspace(np.min(s), np.max(s), 40)
        for cls, colour in ((0, "tab:blue"), (1, "tab:red")):
            ax.hist(s[y == cls], bins=bins, alpha=0.6, color=colour, label=class_names[cls])
        if thresholds and name in thresholds:
            ax.axvline(thresholds[name], color="k", ls="--", lw=1, label="threshold")
        ax.set_title(name, fontsize=9)
        ax.set_xlabel("score")
    axes[0, 0].legend(fontsize=7)
    fig.tight_layout()
    return fig


def roc_plot(curves: Mapping[str, tuple[np.ndarray, np.ndarray]],
             points: Mapping[str, tuple[float, float]] | None = None, ax=None):
    """ROC curves of several detectors, ``curves[name] = (y, scores)``; ``points[name]`` the
    operating point (FPR, TPR) of its threshold."""
    import matplotlib.pyplot as plt
    from sklearn.metrics import roc_auc_score

    if ax is None:
        _, ax = plt.subplots(figsize=(4.2, 3.6))
    for name, (y, s) in curves.items():
        fpr, tpr, _ = roc_curve(y, s)
        line, = ax.plot(fpr, tpr, label=f"{name} (AUC {roc_auc_score(y, s):.3f})")
        if points and name in points:
            ax.plot(*points[name], "o", color=line.get_color())
    ax.plot([0, 1], [0, 1], ":", color="grey")
    ax.set_xlabel("false-alarm rate (1 - TNR)")
    ax.set_ylabel("TPR")
    ax.legend(fontsize=7, loc="lower right")
    ax.grid(alpha=0.3)
    return ax
