"""Figures of the spill report: pure functions of results (nothing is fitted here)."""
from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd
from sklearn.metrics import roc_curve

from cvtasks.stats import Interval


def training_curves(histories: Sequence[object]):
    """Every seed's autoencoder: the loss on normal validation images (which picks the epoch) and
    the validation ROC-AUC of the score."""
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(10, 3.3))
    for k, h in enumerate(histories):
        frame = pd.DataFrame(h.epochs)
        axes[0].plot(frame.epoch, frame["train/loss"], color="0.6", lw=1, label="train" if k == 0 else None)
        axes[0].plot(frame.epoch, frame["val/normal_loss"], color="tab:blue", lw=1.2,
                     label="validation, normal images" if k == 0 else None)
        axes[0].plot(h.best_epoch, frame["val/normal_loss"].iloc[h.best_epoch - 1], "o", color="tab:blue", ms=4)
        axes[1].plot(frame.epoch, frame["val/roc_auc"], color="tab:red", lw=1.2)
    axes[0].set_yscale("log")
    axes[0].set_title(f"reconstruction loss ({len(histories)} seeds; dot: best epoch)", fontsize=9)
    axes[0].legend(fontsize=8)
    axes[1].set_title("validation ROC-AUC of the score, per epoch", fontsize=9)
    for ax in axes:
        ax.set_xlabel("epoch")
        ax.grid(alpha=0.3)
    fig.tight_layout()
    return fig


def error_maps(images: Sequence[np.ndarray], maps: Sequence[np.ndarray], titles: Sequence[str],
               threshold: float, vmax: float, groups: Sequence[str]):
    """Two rows: the images, and the same images with the score's error map over them, on one
    fixed colour scale (a colour bar in the score's units, the alarm threshold marked): where
    the map passes the threshold the image is flagged. ``groups`` names each column's group."""
    import matplotlib.pyplot as plt
    from matplotlib.colors import Normalize

    n = len(images)
    fig, axes = plt.subplots(2, n, figsize=(1.55 * n + 1.4, 4.0), squeeze=False)
    norm = Normalize(0, vmax)
    for i in range(n):
        axes[0, i].imshow(images[i])
        axes[0, i].set_title(f"{groups[i]}\n{titles[i]}", fontsize=7)
        grey = np.asarray(images[i], dtype=float).mean(-1) / 255
        axes[1, i].imshow(grey, cmap="gray", vmin=0, vmax=1)
        heat = axes[1, i].imshow(maps[i], cmap="inferno", norm=norm, alpha=np.clip(maps[i] / vmax, 0.15, 1.0))
        axes[1, i].contour(maps[i], levels=[threshold], colors="cyan", linewidths=0.8)
    for ax in axes.flat:
        ax.set_xticks([])
        ax.set_yticks([])
    axes[0, 0].set_ylabel("image", fontsize=8)
    axes[1, 0].set_ylabel("error map", fontsize=8)
    bar = fig.colorbar(heat, ax=axes[1, :].tolist(), fraction=0.025, pad=0.01)
    bar.ax.axhline(threshold, color="cyan", lw=1.5)
    bar.set_label("score map (cyan: alarm threshold)", fontsize=7)
    return fig


def intervals_plot(intervals: Mapping[str, Mapping[str, Interval]], metrics: Sequence[str] = ("roc_auc", "tpr", "tnr"),
                   targets: Mapping[str, float] | None = None):
    """One panel per metric: each detector's mean over seeds with its 95 % interval."""
    import matplotlib.pyplot as plt

    names = list(intervals)
    fig, axes = plt.subplots(1, len(metrics), figsize=(3.6 * len(metrics), 0.42 * len(names) + 1.3), sharey=True)
    for ax, m in zip(np.atleast_1d(axes), metrics):
        for k, name in enumerate(names):
            iv = intervals[name][m]
            ax.errorbar(iv.value, k, xerr=[[iv.value - iv.low], [iv.high - iv.value]], fmt="o", capsize=3)
        target = ""
        if targets and m in targets:   # named in the title: a legend box would cover the lowest intervals
            ax.axvline(targets[m], color="k", ls=":", lw=1)
            target = f"\ndotted: target {targets[m]:g}"
        ax.set_title(f"test {m} (mean over seeds, 95 % interval){target}", fontsize=8)
        ax.grid(alpha=0.3)
    np.atleast_1d(axes)[0].set_yticks(range(len(names)), names)
    np.atleast_1d(axes)[0].invert_yaxis()
    fig.tight_layout()
    return fig


# The images a lighting-shift row is measured on, and the shade of the unseen ones in shift_plot.
LIGHTING_SETS = {"val": "new lighting (validation)", "test": "new lighting (test)",
                 "training": "training lighting (test)"}
SHADES = {LIGHTING_SETS["val"]: "0.93", LIGHTING_SETS["test"]: "0.82"}


def shift_plot(table: pd.DataFrame):
    """False-alarm-free share (TNR) per lighting condition and score; lighting no training image
    had is shaded (light: the validation set that chose, dark: the test set)."""
    import matplotlib.pyplot as plt
    from matplotlib.patches import Patch

    fig, ax = plt.subplots(figsize=(10, 3.6), dpi=110)
    conditions = list(dict.fromkeys(table.condition))
    scores = list(dict.fromkeys(table.score))
    width = 0.8 / len(scores)
    for j, score in enumerate(scores):
        rows = table[table.score == score].set_index("condition").reindex(conditions)
        x = np.arange(len(conditions)) + j * width
        ax.bar(x, rows.tnr, width, label=score, yerr=[rows.tnr - rows.tnr_low, rows.tnr_high - rows.tnr], capsize=2)
    for k, c in enumerate(conditions):
        shade = SHADES.get(table[table.condition == c].lighting.iloc[0])
        if shade:
            ax.axvspan(k - 0.1, k + 0.9 - 0.1, color=shade, zorder=0)
    ax.set_xticks(np.arange(len(conditions)) + 0.4 - width / 2, conditions, rotation=20, fontsize=8)
    ax.set_ylim(0, 1.02)
    ax.axhline(0.9, color="k", ls=":", lw=1)
    ax.set_ylabel("TNR (normal images not flagged)")
    ax.set_title("TNR by lighting (mean over seeds, 95 % interval); dotted: the 0.90 target", fontsize=9)
    bars = ax.legend(fontsize=8, ncol=len(scores), loc="lower left")
    ax.add_artist(bars)
    ax.legend([Patch(color=c) for c in SHADES.values()], list(SHADES), fontsize=8, loc="lower right")
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
