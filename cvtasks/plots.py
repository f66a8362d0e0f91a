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
