"""Figures of ImageText_Search.ipynb: pure functions of results (nothing is fitted here)."""
from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd

from cvtasks.data.course_search import load_image
from cvtasks.plots import image_grid
from cvtasks.stats import Interval


def grid(images: Sequence, titles: Sequence[str]):
    return image_grid(images, titles, ncols=8, size=1.7)


def target_figure(target: np.ndarray, pairs: pd.DataFrame, own: pd.Series):
    """The training target, the crowd's share, and the two against each other."""
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 3, figsize=(11.5, 2.9))
    axes[0].hist([target[own.to_numpy()], target[~own.to_numpy()]], bins=10, range=(0, 1), stacked=True,
                 label=["query with its own image", "with another image"])
    axes[0].set_title("expert target (0..1), training pairs", fontsize=9)
    axes[0].legend(fontsize=7)
    axes[1].hist(pairs.share.dropna(), bins=10, range=(0, 1))
    axes[1].set_title("crowd share of 'fits'", fontsize=9)
    axes[2].scatter(target, pairs.share, s=3, alpha=0.3)
    axes[2].set_xlabel("expert target")
    axes[2].set_ylabel("crowd share")
    fig.tight_layout()
    return fig


def curves(histories: Mapping[str, object]):
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(histories), figsize=(5 * len(histories), 3), squeeze=False)
    for ax, (name, h) in zip(axes[0], histories.items()):
        frame = pd.DataFrame(h.epochs)
        ax.plot(frame.epoch, frame["train/loss"], marker="o", ms=3, label="train")
        ax.plot(frame.epoch, frame["val/loss"], marker="o", ms=3, label="validation gallery")
        ax.axvline(h.best_epoch, color="k", ls=":", lw=0.8)
        ax.set_title(f"{name}: MSE per epoch (dotted: best)", fontsize=9)
        ax.set_xlabel("epoch")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


def model_intervals(rows: Mapping[str, Mapping[str, Interval]], ranker: str, metrics=("ndcg@10", "recall@5", "kendall_tau")):
    """Each model's test figures (new queries) with 95 % intervals over queries; the served ranker bold."""
    import matplotlib.pyplot as plt

    names = sorted(rows, key=lambda n: -rows[n]["ndcg@10"].value)
    fig, axes = plt.subplots(1, len(metrics), figsize=(4 * len(metrics), 0.4 * len(names) + 1.2), sharey=True)
    for ax, m in zip(axes, metrics):
        for k, n in enumerate(names):
            if m in rows[n]:
                iv = rows[n][m]
                ax.errorbar(iv.value, k, xerr=[[iv.value - iv.low], [iv.high - iv.value]], fmt="o", capsize=3,
                            color="tab:red" if n == ranker else "tab:blue")
        ax.set_title(f"test {m}, new queries", fontsize=9)
        ax.grid(alpha=0.3, axis="x")
    axes[0].set_yticks(range(len(names)), [f"{n} (served)" if n == ranker else n for n in names])
    axes[0].invert_yaxis()
    fig.tight_layout()
    return fig


def reliability(tables: Mapping[str, pd.DataFrame]):
    """Mean observed target against mean predicted score per bin (the diagonal is calibrated)."""
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(4.6, 4.2))
    ax.plot([0, 1], [0, 1], ":", color="grey", label="calibrated")
    for name, t in tables.items():
        ax.plot(t.predicted, t.observed, marker="o", label=name)
    ax.set_xlabel("predicted score (test pairs, binned)")
    ax.set_ylabel("mean votes' target in the bin")
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    return fig


def nomatch_figure(stat: np.ndarray, no_match: np.ndarray, threshold: float, name: str):
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 3))
    bins = np.linspace(min(stat.min(), threshold), max(stat.max(), threshold), 31)
    ax.hist(stat[~no_match], bins=bins, alpha=0.6, label="queries with a match in the gallery")
    ax.hist(stat[no_match], bins=bins, alpha=0.6, label="queries of held-out categories")
    ax.axvline(threshold, color="k", ls="--", label="threshold (chosen on validation)")
    ax.set_xlabel(f"{name} (test gallery)")
    ax.legend(fontsize=7)
    fig.tight_layout()
    return fig


def hits(gallery, bundle, query_vector: np.ndarray, title: str, own: str = "", k: int = 6):
    """The ``k`` best drawings for one query with the served search's calibrated scores; the
    query's own drawing marked; when the search finds no good match, the title says so."""
    scores, found, order = bundle.scored(query_vector)
    scores, best = scores[0], order[0, :k]
    names = [gallery.images[j] for j in best]
    # rank (by the ranker's own score) and calibrated score: the calibration can tie neighbours
    titles = [("OWN " if n == own else "") + f"#{r} {scores[j]:.2f}" for r, (n, j) in enumerate(zip(names, best), 1)]
    verdict = "" if found[0] else "  ->  no good match"
    return image_grid([load_image(gallery.folder / n) for n in names], titles, ncols=k, size=1.5,
                      suptitle=title + verdict)
