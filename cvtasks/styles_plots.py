"""Figures of Styles_Avatars.ipynb: distributions, conditionals, learning curves, pixel maps."""
from __future__ import annotations

import numpy as np
import pandas as pd

from cvtasks import styles as S
from cvtasks.bayesnet import BayesNet


def distribution_plot(c: np.ndarray, options, prior_strength: float, truth: np.ndarray | None = None,
                      title: str = "", ax=None):
    """MLE bars, Bayes posterior mean with its 90% credible interval, and the truth if known."""
    import matplotlib.pyplot as plt

    if ax is None:
        _, ax = plt.subplots(figsize=(7, 3))
    x = np.arange(len(options))
    mean = S.posterior_mean(c, prior_strength)
    lo, hi = S.posterior_interval(c, prior_strength)
    ax.bar(x - 0.2, S.mle(c), width=0.4, label="MLE", color="tab:blue")
    ax.errorbar(x + 0.2, mean, yerr=[mean - lo, hi - mean], fmt="o", color="tab:orange",
                label=f"Bayes mean, 90% interval (a={prior_strength:g})")
    if truth is not None:
        ax.scatter(x, truth, marker="_", s=300, color="k", label="truth", zorder=3)
    ax.set_xticks(x, options, rotation=60, ha="right", fontsize=7)
    ax.set_ylabel("probability")
    ax.set_title(title)
    ax.legend(fontsize=7)
    return ax


def table_heatmap(frame: pd.DataFrame, title: str = "", ax=None, fmt: str = ".2f", cmap: str = "viridis"):
    import matplotlib.pyplot as plt

    if ax is None:
        _, ax = plt.subplots(figsize=(0.45 * frame.shape[1] + 2.5, 0.3 * frame.shape[0] + 1.5))
    im = ax.imshow(frame.to_numpy(dtype=float), cmap=cmap, aspect="auto")
    ax.set_xticks(range(frame.shape[1]), frame.columns, rotation=60, ha="right", fontsize=7)
    ax.set_yticks(range(frame.shape[0]), frame.index, fontsize=7)
    if frame.size <= 64:
        for (i, j), v in np.ndenumerate(frame.to_numpy(dtype=float)):
            ax.text(j, i, format(v, fmt), ha="center", va="center", fontsize=6, color="w")
    ax.figure.colorbar(im, ax=ax, fraction=0.04)
    ax.set_title(title)
    return ax


def learning_curves(summary: pd.DataFrame, prior_strength: float):
    """Held-out log-likelihood, MLE zero rate and KL against the training size."""
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 3, figsize=(13, 3.4))
    for (model, method), g in summary.groupby(["model", "method"]):
        g = g[(g.method == "mle") | (g.prior_strength == prior_strength)]
        style = "-" if model == "dependent" else "--"
        label = f"{method} / {model}"
        axes[0].plot(g.n, g.heldout_ll_seen, style, marker="o", label=label)
        axes[1].plot(g.n, g.zero_rate, style, marker="o", label=label)
        axes[2].plot(g.n, g.kl.where(g.kl_inf_share == 0), style, marker="o", label=label)
    titles = ("held-out log-lik per style\n(styles MLE can score)", "share of held-out styles with P = 0",
              "KL(true || estimate), nats\n(missing: infinite)")
    for ax, t in zip(axes, titles):
        ax.set_xscale("log")
        ax.set_xlabel("training size n")
        ax.set_title(t, fontsize=9)
        ax.grid(alpha=0.3)
    axes[0].legend(fontsize=7)
    fig.tight_layout()
    return fig


def prior_strength_plot(summary: pd.DataFrame):
    import matplotlib.pyplot as plt

    bayes = summary[(summary.method == "bayes") & (summary.model == "dependent")]
    fig, axes = plt.subplots(1, 2, figsize=(9, 3.2))
    for n, g in bayes.groupby("n"):
        axes[0].plot(g.prior_strength, g.heldout_ll, marker="o", label=f"n={n}")
        axes[1].plot(g.prior_strength, g.kl, marker="o", label=f"n={n}")
    for ax, t in zip(axes, ("held-out log-lik per style", "KL(true || Bayes)")):
        ax.set_xscale("log")
        ax.set_xlabel("prior strength a (pseudo-count per option)")
        ax.set_title(t, fontsize=9)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    fig.tight_layout()
    return fig


def conditional_frame(model: BayesNet, child: str) -> pd.DataFrame:
    parent = model.parents[child]
    return pd.DataFrame(model.tables[child], index=model.schema[parent], columns=model.schema[child])


def pixel_maps(global_probs: np.ndarray, palette: np.ndarray):
    """The most likely colour of each pixel and the entropy of its distribution."""
    import matplotlib.pyplot as plt

    entropy = -(global_probs * np.log(global_probs)).sum(-1)
    fig, axes = plt.subplots(1, 3, figsize=(9, 3))
    axes[0].imshow(palette[global_probs.argmax(-1)])
    axes[0].set_title("most likely colour per pixel", fontsize=9)
    im = axes[1].imshow(entropy, cmap="magma")
    fig.colorbar(im, ax=axes[1], fraction=0.046)
    axes[1].set_title("entropy per pixel (nats)", fontsize=9)
    axes[2].imshow(palette[None, :, :].repeat(4, 0), aspect="auto")
    axes[2].set_title(f"palette ({len(palette)} colours)", fontsize=9)
    for ax in axes:
        ax.axis("off")
    fig.tight_layout()
    return fig
