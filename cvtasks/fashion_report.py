"""Tables and figures of the Fashion notebook: study plots, targets, mistakes, model card."""
from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd

import config
from cvtasks.plots import image_grid


def study_plot(hp: pd.DataFrame, metric: str = "val/acc"):
    """One panel per hyperparameter: the metric for each of its values (others at the base)."""
    import matplotlib.pyplot as plt

    factors = list(dict.fromkeys(hp["factor"]))
    fig, axes = plt.subplots(1, len(factors), figsize=(3 * len(factors), 2.8), sharey=True, dpi=90)
    for ax, factor in zip(np.atleast_1d(axes), factors):
        rows = hp[hp["factor"] == factor]
        ax.bar([str(v) for v in rows[factor]], rows[metric], color="tab:blue")
        ax.set_title(factor)
        ax.set_ylim(max(0.0, float(hp[metric].min()) - 0.05), 1.0)
        ax.grid(axis="y", alpha=0.3)
    np.atleast_1d(axes)[0].set_ylabel(metric)
    fig.tight_layout()
    return fig


def best_setting(hp: pd.DataFrame, metric: str = "val/acc") -> dict[str, Any]:
    """The winning value of each factor (the best row of that factor's sweep)."""
    best = {}
    for factor in dict.fromkeys(hp["factor"]):
        rows = hp[hp["factor"] == factor]
        best[factor] = rows.loc[rows[metric].idxmax(), factor]
    return best


def targets_table(metrics: Mapping[str, float], targets: Mapping[str, float] | None = None) -> pd.DataFrame:
    """Each target, the measured value, the margin (negative: short by) and whether it is met."""
    targets = dict(targets or config.FASHION_TARGETS)
    rows = [(k, t, metrics[k], metrics[k] - t, metrics[k] >= t) for k, t in targets.items()]
    return pd.DataFrame(rows, columns=["metric", "target", "measured", "margin", "met"]).set_index("metric").round(4)


def train_test_table(metrics: Mapping[str, float]) -> pd.DataFrame:
    names = ["accuracy", "top3", "macro_f1", "balanced_accuracy", "min_class_precision", "min_class_recall"]
    return pd.DataFrame({split: [metrics[f"{split}/{n}"] for n in names] for split in ("train", "test")},
                        index=pd.Index(names, name="metric")).round(4)


def mistakes_figure(images: np.ndarray, labels: np.ndarray, probs: np.ndarray, indices: np.ndarray,
                    classes: tuple[str, ...], ncols: int = 8):
    """The chosen test images titled "true -> predicted (confidence)"."""
    pred = probs.argmax(1)
    titles = [f"{classes[labels[i]]}\n-> {classes[pred[i]]} ({probs[i, pred[i]]:.2f})" for i in indices]
    return image_grid([images[i] for i in indices], titles, ncols=ncols, size=1.5)


def model_card(meta: Mapping[str, Any], metrics: Mapping[str, float], per_class: pd.DataFrame) -> str:
    """A short model card in Markdown, from the checkpoint's metadata and the measured metrics."""
    arch, cfg = meta["arch"], meta["config"]
    weakest = per_class.sort_values("f1").head(2)
    weak = ", ".join(f"{name} (P {r.precision:.2f}, R {r.recall:.2f})" for name, r in weakest.iterrows())
    return "\n".join([
        "### Model card: Fashion-MNIST product category classifier",
        f"- **Model**: `{arch['name']}` (width {arch['width']}, BatchNorm {arch['batchnorm']}, dropout {arch['dropout']}), "
        f"{meta['parameters']:,} parameters; input 28x28 grey, normalised with mean {meta['mean']:.4f}, std {meta['std']:.4f}.",
        f"- **Training**: {cfg['train_size']:,} Fashion-MNIST training images ({cfg['val_size']:,} held out for validation), "
        f"{cfg['epochs']} epochs, {cfg['optimizer']} lr {cfg['lr']} (cosine), batch {cfg['batch_size']}, "
        f"augmentation `{cfg['augment']}`, label smoothing {cfg['label_smoothing']}; {meta['train_seconds']:.0f} s "
        f"on this machine; best epoch {meta['best_epoch']}.",
        f"- **Test (10k images)**: accuracy {metrics['test/accuracy']:.4f}, top-3 {metrics['test/top3']:.4f}, "
        f"macro-F1 {metrics['test/macro_f1']:.4f}; weakest classes: {weak}.",
        "- **Intended use**: suggest a category for a new product photo that looks like Fashion-MNIST "
        "(one centred item, grey, 28x28, plain background); a person confirms low-confidence or top-3 suggestions.",
        "- **Limits**: trained on studio-style catalogue thumbnails only; real shop photos (colour, models "
        "wearing the item, clutter) need the DeepFashion path; Shirt vs T-shirt/top/Pullover/Coat stays the "
        "main confusion.",
        f"- **Files**: `{config.FASHION_MODEL.relative_to(config.ROOT)}` (weights + classes + mean/std + architecture).",
    ])
