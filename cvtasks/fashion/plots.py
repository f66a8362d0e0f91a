"""Figures of Fashion_Classification.ipynb: pure functions of results (nothing is fitted here)."""
from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd

from cvtasks.plots import image_grid


def samples(images: np.ndarray, labels: np.ndarray, classes: Sequence[str], per_class: int = 3):
    idx = np.concatenate([np.flatnonzero(labels == c)[:per_class] for c in range(len(classes))])
    return image_grid([images[i] for i in idx], [classes[labels[i]] for i in idx], ncols=10, size=1.1)


def study_figures(study):
    """Optuna's own plots (matplotlib backend): the parameters' importance (fANOVA) and the
    parallel coordinates of every complete trial. Optuna switches matplotlib to its "ggplot"
    style globally; the rc context keeps that from leaking into every later figure, and the two
    figures are given the project's white axes."""
    import warnings

    import matplotlib.pyplot as plt
    from optuna.visualization import matplotlib as ovm

    with warnings.catch_warnings(), plt.rc_context():
        warnings.simplefilter("ignore")
        importance = ovm.plot_param_importances(study).figure
        importance.set_size_inches(6.5, 4)
        parallel = ovm.plot_parallel_coordinate(study).figure
        parallel.set_size_inches(14, 4.8)
    for fig in (importance, parallel):
        fig.set_facecolor("white")
        for ax in fig.axes:
            ax.set_facecolor("white")
            ax.tick_params(labelsize=7)
    for label in parallel.axes[0].get_xticklabels():   # one axis per parameter: names would overlap
        label.set_rotation(30)
        label.set_horizontalalignment("right")
    for fig in (importance, parallel):
        fig.tight_layout()
    return importance, parallel


def time_to_accuracy(curves: Mapping[str, pd.DataFrame]):
    """Validation accuracy against CPU seconds, one line per recipe: measured for runs on this
    kind of CPU (solid), estimated for GPU runs from their epochs and the CPU seconds per epoch
    measured for that recipe (dashed); runs without a CPU figure are left out."""
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4.6))
    for name, frame in curves.items():
        if "cpu_seconds" not in frame:
            continue
        estimated = bool(frame["cpu_estimated"].iloc[0])
        ax.plot(frame["cpu_seconds"] / 3600, frame["val/acc"], ls="--" if estimated else "-", lw=1.2,
                label=f"{name}{' (CPU time estimated)' if estimated else ''}")
    ax.set_xlabel("training hours on a 2-core CPU")
    ax.set_ylabel("validation accuracy")
    ax.set_ylim(0.88, 0.965)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, loc="upper center", bbox_to_anchor=(0.5, -0.16), ncol=1, frameon=False)   # off the curves
    fig.tight_layout()
    return fig


def per_class(table: pd.DataFrame, bar: float = 0.85):
    """Every class's precision and recall with 95 % intervals, against the product plan's bar."""
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(8, 3.6))
    x = np.arange(len(table))
    for offset, col, colour in ((-0.15, "precision", "tab:blue"), (0.15, "recall", "tab:orange")):
        v = table[col].to_numpy()
        ax.errorbar(x + offset, v, yerr=[v - table[f"{col}_low"], table[f"{col}_high"] - v], fmt="o", capsize=3,
                    color=colour, label=col)
    ax.axhline(bar, color="k", ls=":", lw=1, label=f"plan's bar {bar}")
    ax.set_xticks(x, table.index, rotation=30, ha="right", fontsize=8)
    ax.set_ylim(min(0.6, float(table[["precision_low", "recall_low"]].min().min()) - 0.02), 1.0)
    ax.set_title("test precision and recall per category (95 % interval over test images)", fontsize=9)
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    return fig


def mistakes(images: np.ndarray, labels: np.ndarray, probs: np.ndarray, indices: np.ndarray,
             classes: Sequence[str], ncols: int = 8):
    """The chosen test images titled "true -> predicted (confidence)"."""
    pred = probs.argmax(1)
    titles = [f"{classes[labels[i]]}\n-> {classes[pred[i]]} ({probs[i, pred[i]]:.2f})" for i in indices]
    return image_grid([images[i] for i in indices], titles, ncols=ncols, size=1.5)


def shirt_by_trial(trials: pd.DataFrame):
    """Each complete trial's Shirt recall and precision on validation against its accuracy."""
    import matplotlib.pyplot as plt

    done = trials[trials.state == "COMPLETE"]
    fig, ax = plt.subplots(figsize=(5.5, 3.6))
    ax.scatter(done["value"], done["shirt_recall"], s=14, label="Shirt recall")
    ax.scatter(done["value"], done["shirt_precision"], s=14, label="Shirt precision")
    ax.axhline(0.85, color="k", ls=":", lw=1)
    ax.set_xlabel("validation accuracy of the trial")
    ax.set_title("Shirt across the study's trials (validation)", fontsize=9)
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    return fig
