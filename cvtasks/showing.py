"""What a notebook shows: figures rendered once to PNG (the same pixels go to W&B), tables and
Markdown, with a display id where a later cell fills an earlier output in."""
from __future__ import annotations

import io
from typing import Any

import config


def in_notebook() -> bool:
    """True inside a Jupyter kernel (JupyterLab, nbclient), False in a script or a terminal."""
    try:
        from IPython import get_ipython
    except ImportError:
        return False
    shell = get_ipython()
    return shell is not None and type(shell).__name__ == "ZMQInteractiveShell"


def figure_png(figure: Any, dpi: int = config.FIGURE_DPI) -> bytes:
    """A matplotlib figure as PNG bytes, cropped to what is drawn (no cut titles); closes it."""
    import matplotlib.pyplot as plt

    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=dpi, bbox_inches="tight", facecolor="white")
    plt.close(figure)
    return buffer.getvalue()


def display(obj: Any, display_id: str | None = None) -> None:
    """IPython's display; a table is shown whole (pandas would hide the middle of a wide or long
    one behind "...")."""
    import pandas as pd
    from IPython.display import display as ipython_display

    with pd.option_context("display.max_columns", None, "display.max_rows", 500, "display.width", None):
        ipython_display(obj, display_id=display_id)


def show_png(png: bytes) -> None:
    from IPython.display import Image

    display(Image(data=png, format="png"))


def show_markdown(text: str, display_id: str | None = None) -> None:
    from IPython.display import Markdown

    display(Markdown(text), display_id=display_id)


def update_markdown(text: str, display_id: str) -> None:
    from IPython.display import Markdown, update_display

    update_display(Markdown(text), display_id=display_id)


def key_value_markdown(rows: dict[str, Any]) -> str:
    """A two-column Markdown table (no index noise)."""
    lines = ["| | |", "|---|---|"] + [f"| {k} | `{v}` |" for k, v in rows.items()]
    return "\n".join(lines)
