"""Atomic file writes and the per-task metrics file.

Every write goes to a temporary file in the target's folder and is moved into place with
os.replace, so a crash never leaves a half-written cache, checkpoint or report behind.
"""
from __future__ import annotations

import json
import math
import os
import tempfile
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import numpy as np

import config


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def atomic_write(path: str | Path, write: Callable[[Path], None]) -> Path:
    """Call ``write(tmp_path)``, then move the temporary file onto ``path``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    try:
        write(Path(tmp))
        os.chmod(tmp, 0o666 & ~_umask())   # mkstemp makes 0600; a file for others to read (a
        os.replace(tmp, path)               # container's user, a web server) gets the usual mode
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def atomic_write_text(path: str | Path, text: str) -> Path:
    return atomic_write(path, lambda tmp: tmp.write_text(text, encoding="utf-8"))


def check_metrics(metrics: Mapping[str, Any]) -> dict[str, float | str]:
    flat = {}
    for key, value in metrics.items():
        if not isinstance(key, str) or not key or key != key.strip() or "//" in key:
            raise ValueError(f"metric key {key!r}: must be a slash-named string like 'test/acc'")
        if isinstance(value, np.generic):   # numpy scalars from pandas and numpy reductions
            value = value.item()
        if isinstance(value, str) and value and len(value) <= 64:   # a label: which split, which strategy
            flat[key] = value
            continue
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ValueError(f"metric {key!r} = {value!r}: must be a number or a short label (metrics are flat)")
        if not math.isfinite(float(value)):
            raise ValueError(f"metric {key!r} = {value!r}: must be finite")
        flat[key] = float(value) if isinstance(value, float) else int(value)
    return flat


def metrics_path(task: str, quick: bool = False, name: str = "metrics",
                 reports_dir: str | Path | None = None) -> Path:
    """<reports>/<task>/<name>.json; quick runs go to <reports>/<task>/quick/ (git-ignored) so
    that a smoke run never overwrites the figures of the committed full run."""
    folder = Path(reports_dir or config.REPORTS_DIR) / task
    return (folder / "quick" if quick else folder) / f"{name}.json"


def write_metrics(task: str, metrics: Mapping[str, Any], quick: bool = False, name: str = "metrics",
                  reports_dir: str | Path | None = None) -> Path:
    """Write the task's metrics file: flat, slash-named, sorted keys (``dvc metrics show``)."""
    flat = check_metrics(metrics)
    return atomic_write_text(metrics_path(task, quick, name, reports_dir),
                             json.dumps(flat, indent=2, sort_keys=True) + "\n")


def read_metrics(task: str, quick: bool = False, name: str = "metrics",
                 reports_dir: str | Path | None = None) -> dict[str, float]:
    return json.loads(metrics_path(task, quick, name, reports_dir).read_text(encoding="utf-8"))


def save_npz(path: str | Path, **arrays: Any) -> Path:
    """Arrays to ``path`` (.npz), atomically."""
    def write(tmp: Path) -> None:
        with open(tmp, "wb") as fh:
            np.savez(fh, **{k: np.asarray(v) for k, v in arrays.items()})

    return atomic_write(path, write)
