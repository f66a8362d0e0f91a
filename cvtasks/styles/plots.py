"""Figures of Styles_Avatars.ipynb: pure functions of results (nothing is fitted here)."""
from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd

from cvtasks.models.bayesnet import BayesNet
from cvtasks.styles import estimation as est

STRUCTURE_STYLE = {"independent": ":", "learned": "-", "true": "--"}
METHOD_COLOUR = {"mle": "tab:blue", "bayes": "tab:orange"}


def distribution_plot(c: np.ndarray, options, prior_strength: float, truth: np.ndarray | None = None,
                      title: str = "", ax=None):
    """MLE bars, Bayes posterior mean with its 90% credible interval, and the truth if known."""
    import matplotlib.pyplot as plt

    if ax is None:
        _, ax = plt.subplots(figsize=(7, 3))
    x = np.arange(len(options))
    mean = est.posterior_mean(c, prior_strength)
    lo, hi = est.posterior_interval(c, prior_strength)
    ax.bar(x - 0.2, est.mle(c), width=0.4, label="MLE", color="tab:blue")
    ax.errorbar(x + 0.2, mean, yerr=[mean - lo, hi - mean], fmt="o", color="tab:orange",
                label=f"Bayes mean, 90% interval (a={prior_strength:g})")
    if truth is not None:
        ax.scatter(x, truth, marker="_", s=300, color="k", label="truth", zorder=3)
    ax.set_xticks(x, options, rotation=60, ha="right", fontsize=7)
    ax.set_ylabel("probability")
    ax.set_title(title)
    ax.legend(fontsize=7)
    return ax


def distributions(sample: np.ndarray, schema: Mapping[str, Sequence[str]], attributes: Sequence[str],
                  prior_strength: float, truth: BayesNet | None = None):
    """MLE and Bayes estimates of a few attributes from a small sample, beside the truth."""
    import matplotlib.pyplot as plt

    names = list(schema)
    fig, axes = plt.subplots(1, len(attributes), figsize=(6.5 * len(attributes), 3.6), squeeze=False)
    for ax, attr in zip(axes[0], attributes):
        c = est.counts(sample[:, names.index(attr)], len(schema[attr]))
        distribution_plot(c, schema[attr], prior_strength, truth.marginal(attr) if truth else None,
                          title=f"P({attr}) from {len(sample)} people", ax=ax)
    fig.tight_layout()
    return fig


def conditionals(conditional: pd.DataFrame, reversed_: pd.DataFrame, parent: str, child: str):
    """P(child | parent) by MLE, and P(parent | child) from it by Bayes' rule."""
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(14, 4.6))
    table_heatmap(conditional, f"P({child} | {parent}), MLE", ax=axes[0])
    table_heatmap(reversed_, f"P({parent} | {child}), Bayes' rule", ax=axes[1])
    fig.tight_layout()
    return fig


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


def _log_n_axis(ax) -> None:
    from matplotlib.ticker import NullFormatter, ScalarFormatter

    ax.set_xscale("log")
    ax.xaxis.set_major_formatter(ScalarFormatter())
    ax.xaxis.set_minor_formatter(NullFormatter())
    ax.set_xlabel("training rows n")


def _band(ax, g: pd.DataFrame, col: str, **kw) -> None:
    line, = ax.plot(g.n, g[col], marker="o", ms=3, **kw)
    ax.fill_between(g.n, g[f"{col}_lo"], g[f"{col}_hi"], color=line.get_color(), alpha=0.15, lw=0)


def learning_curves(summary: pd.DataFrame):
    """Test log-likelihood (Bayes; and MLE on the styles it can score), the share MLE scores
    zero and KL to the truth, against the training size; bands: middle 95 % of resamples."""
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 3, figsize=(13.5, 3.8))
    for (name, method), g in summary.groupby(["structure", "method"]):
        kw = {"ls": STRUCTURE_STYLE.get(name, "-"), "color": METHOD_COLOUR[method], "label": f"{method}, {name}"}
        _band(axes[0], g, "heldout_ll" if method == "bayes" else "heldout_ll_seen", **kw)
        if method == "mle":
            _band(axes[1], g, "zero_rate", **kw)
        if g.kl.notna().any():
            finite = g[g.kl_inf_share == 0]
            if len(finite):
                _band(axes[2], finite, "kl", **kw)
    titles = ("test log-likelihood per style (nats)\nMLE: only the styles it can score",
              "share of test styles MLE gives P = 0", "KL(true || model), nats\n(MLE: infinite, not drawn)")
    for ax, title in zip(axes, titles):
        _log_n_axis(ax)
        ax.set_title(title, fontsize=9)
        ax.grid(alpha=0.3)
    axes[0].legend(fontsize=7, ncol=2)
    fig.tight_layout()
    return fig


def structure_figure(summary: pd.DataFrame, learned: Mapping[str, str | None],
                     truth: Mapping[str, str | None] | None):
    """Left: SHD of the learned skeleton to the truth (and its edge count) against n. Right: the
    structure learned from all training rows, drawn against the true one."""
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(11.5, 4.2), gridspec_kw={"width_ratios": [1, 1.1]})
    g = summary[(summary.structure == "learned") & (summary.method == "bayes")]
    if g.shd.notna().any():
        _band(axes[0], g, "shd", color="tab:red", label="SHD to the true skeleton")
    _band(axes[0], g, "edges", color="tab:green", label="edges learned")
    _log_n_axis(axes[0])
    axes[0].set_title("structure learned from n rows (BDeu forest)", fontsize=9)
    axes[0].legend(fontsize=8)
    axes[0].grid(alpha=0.3)
    _draw_graph(axes[1], learned, truth)
    fig.tight_layout()
    return fig


def _draw_graph(ax, learned: Mapping[str, str | None], truth: Mapping[str, str | None] | None) -> None:
    names = list(learned)
    pos = {a: (math.cos(2 * math.pi * i / len(names)), math.sin(2 * math.pi * i / len(names)))
           for i, a in enumerate(names)}
    true_edges = {(p, a) for a, p in (truth or {}).items() if p is not None}
    found = {(p, a) for a, p in learned.items() if p is not None}
    same_pair = {frozenset(e) for e in true_edges}
    for (p, a) in found:   # skeletons: directions are chosen later, on validation
        colour = "black" if frozenset((p, a)) in same_pair else "tab:red"
        ax.annotate("", xy=pos[a], xytext=pos[p],
                    arrowprops={"arrowstyle": "-", "color": colour, "lw": 2.5, "shrinkA": 22, "shrinkB": 22})
    for (p, a) in true_edges:
        if frozenset((p, a)) not in {frozenset(e) for e in found}:
            ax.annotate("", xy=pos[a], xytext=pos[p],
                        arrowprops={"arrowstyle": "-", "color": "grey", "lw": 1.5, "ls": ":",
                                    "shrinkA": 22, "shrinkB": 22})
    for a, (x, y) in pos.items():
        ax.text(x, y, a.replace("_", " "), ha="center", va="center", fontsize=9,
                bbox={"boxstyle": "round", "fc": "white", "ec": "0.5"})
    ax.set_xlim(-1.5, 1.5)
    ax.set_ylim(-1.35, 1.35)
    ax.axis("off")
    legend = "black: learned and true; red: learned only" + ("; dotted grey: true, missed" if truth else "")
    ax.set_title(f"skeleton learned from all training rows\n{legend}", fontsize=9)


def prior_plot(choice: pd.DataFrame, validity: pd.DataFrame, chosen: float):
    """Validation log-likelihood and the validity of sampled styles against the prior strength."""
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(9.5, 3.3))
    axes[0].plot(choice.prior_strength, choice.val_ll, marker="o")
    axes[0].set_title("validation log-likelihood per style (nats)", fontsize=9)
    if validity.validity.notna().any():
        axes[1].plot(validity.prior_strength, validity.validity, marker="o", color="tab:green")
    axes[1].set_title("validity of sampled styles", fontsize=9)
    for ax in axes:
        ax.axvline(chosen, color="k", ls="--", lw=1, label=f"chosen a = {chosen:g}")
        ax.set_xscale("log")
        ax.set_xlabel("prior strength a (pseudo-count per option)")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


def avatar_rows(rows: Mapping[str, np.ndarray], titles: Sequence[str] | None = None, size: float = 1.25,
                caption: str | None = None):
    """One row of avatars per method, the method named at the left; ``titles`` above the columns
    (the conditioning styles), explained by ``caption``."""
    import matplotlib.pyplot as plt

    n = max(len(v) for v in rows.values())
    fig, axes = plt.subplots(len(rows), n, figsize=(size * n + 1.6, size * len(rows) + 0.9), squeeze=False)
    for r, (label, images) in enumerate(rows.items()):
        for c in range(n):
            ax = axes[r, c]
            ax.set_xticks([])
            ax.set_yticks([])
            for side in ax.spines.values():
                side.set_visible(False)
            if c < len(images):
                ax.imshow(images[c])
            if r == 0 and titles is not None and c < len(titles):
                ax.set_title(titles[c], fontsize=6.5)
        axes[r, 0].set_ylabel(label, fontsize=9, rotation=0, ha="right", va="center")
    if caption:
        fig.suptitle(caption, fontsize=9)
    fig.tight_layout()
    return fig


def mutual_information(mi: pd.DataFrame):
    return table_heatmap(mi, "mutual information between attributes (nats), training rows").figure


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
