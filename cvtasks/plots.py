"""Figures and tables that the notebooks show."""
from __future__ import annotations

from typing import Any

import pandas as pd

import config


def settings_table(cfg: config.TaskConfig) -> pd.DataFrame:
    """A task's settings as a two-column table, with the run mode first."""
    rows = [("mode", "quick" if config.quick_from_env() else "full")]
    rows += [(k, str(v.relative_to(config.ROOT)) if hasattr(v, "relative_to") and config.ROOT in getattr(v, "parents", ())
              else v) for k, v in cfg.to_dict().items()]
    return pd.DataFrame(rows, columns=["setting", "value"]).set_index("setting")


def history_plot(history: Any, keys: tuple[str, ...] = ("train/loss", "val/loss"), ax: Any = None):
    """Curves of a cvtasks.train.History (or a list of per-epoch dicts) against the epoch."""
    import matplotlib.pyplot as plt

    rows = getattr(history, "epochs", history)
    frame = pd.DataFrame(rows).set_index("epoch")
    if ax is None:
        _, ax = plt.subplots(figsize=(5, 3.2))
    for key in keys:
        if key in frame:
            ax.plot(frame.index, frame[key], marker="o", label=key)
    ax.set_xlabel("epoch")
    ax.legend()
    ax.grid(alpha=0.3)
    return ax


def image_grid(images, titles=None, ncols: int = 8, size: float = 1.6, suptitle: str | None = None):
    """A grid of images (uint8 arrays or PIL images) with optional titles; returns the figure."""
    import matplotlib.pyplot as plt
    import numpy as np

    n = len(images)
    ncols = max(1, min(ncols, n))
    nrows = max(1, -(-n // ncols))
    fig, axes = plt.subplots(nrows, ncols, figsize=(size * ncols, size * nrows + (0.4 if suptitle else 0)),
                             squeeze=False)
    for ax in axes.flat:
        ax.axis("off")
    for i, image in enumerate(images):
        ax = axes.flat[i]
        arr = np.asarray(image)
        ax.imshow(arr, cmap="gray" if arr.ndim == 2 else None)
        if titles is not None:
            ax.set_title(str(titles[i]), fontsize=7)
    if suptitle:
        fig.suptitle(suptitle)
    fig.tight_layout()
    return fig


def confusion_matrix_plot(y_true, y_pred, class_names, normalize: str | None = "true", ax=None):
    """A confusion matrix with class names; rows are true classes (normalised per row by default)."""
    import matplotlib.pyplot as plt
    from sklearn.metrics import ConfusionMatrixDisplay

    if ax is None:
        side = max(4.0, 0.45 * len(class_names) + 2)
        _, ax = plt.subplots(figsize=(side, side))
    ConfusionMatrixDisplay.from_predictions(y_true, y_pred, labels=list(range(len(class_names))),
                                            display_labels=class_names, normalize=normalize, ax=ax,
                                            colorbar=False, values_format=".2f" if normalize else "d",
                                            xticks_rotation=45)
    ax.grid(False)   # grid lines would cross the cells
    return ax
