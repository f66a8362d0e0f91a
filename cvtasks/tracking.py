"""Experiment tracking: one small wrapper over Weights & Biases, plus the TensorBoard projector.

Mode: ``CVTASKS_WANDB`` (online / offline / disabled) when set; else ``WANDB_MODE`` when set;
else online when ``WANDB_API_KEY`` is set and offline otherwise. Offline runs land in
./wandb and are uploaded later with ``wandb sync wandb/offline-run-*``. The tests disable
tracking (tests/conftest.py).
"""
from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

import config

MODE_ENV = "CVTASKS_WANDB"
MODES = ("online", "offline", "disabled")


def wandb_mode() -> str:
    for var in (MODE_ENV, "WANDB_MODE"):
        value = os.environ.get(var, "").strip().lower()
        if value:
            if value not in MODES:
                raise ValueError(f"{var}={value!r}: must be one of {', '.join(MODES)}")
            return value
    return "online" if os.environ.get("WANDB_API_KEY") else "offline"


def _plain(value: Any) -> Any:
    """Config values W&B can store (paths and tuples as plain types)."""
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, Mapping):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value


class Run:
    """A W&B run for one task: ``with Run("brands", cfg) as run: run.log({...})``."""

    def __init__(self, task: str, settings: Any = None, *, name: str | None = None,
                 tags: Sequence[str] = (), mode: str | None = None):
        import wandb

        self._wandb = wandb
        cfg = settings.to_dict() if hasattr(settings, "to_dict") else dict(settings or {})
        self.mode = mode or wandb_mode()
        self._run = wandb.init(
            project=config.WANDB_PROJECT, entity=config.WANDB_ENTITY, group=task, job_type=task,
            name=name, tags=list(tags), config=_plain(cfg), dir=str(config.WANDB_DIR),
            mode=self.mode, reinit="create_new",
            settings=wandb.Settings(silent=True, console="off"),
        )

    # metrics ---------------------------------------------------------------------------
    def log(self, metrics: Mapping[str, Any], step: int | None = None) -> None:
        """Log slash-named metrics (``train/loss``, ``val/acc``) at an optional step."""
        self._run.log(dict(metrics), step=step)

    def log_history(self, history: Sequence[Mapping[str, Any]], prefix: str = "") -> None:
        """Log per-epoch dicts (as returned by cvtasks.train.fit) one step per epoch."""
        for row in history:
            self.log({f"{prefix}{k}": v for k, v in row.items()})

    def summary(self, metrics: Mapping[str, Any]) -> None:
        self._run.summary.update(dict(metrics))

    # media -----------------------------------------------------------------------------
    def log_figure(self, key: str, figure: Any) -> None:
        """A matplotlib figure, stored as an image so it renders the same everywhere."""
        self._run.log({key: self._wandb.Image(figure)})

    def log_table(self, key: str, frame: Any) -> None:
        """A pandas DataFrame as a W&B table."""
        self._run.log({key: self._wandb.Table(dataframe=frame)})

    @property
    def dir(self) -> str | None:
        return None if self.mode == "disabled" else self._run.dir

    def finish(self) -> None:
        self._run.finish()

    def __enter__(self) -> "Run":
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        self._run.finish(exit_code=1 if exc_type else 0)


def export_projector(embeddings: np.ndarray, labels: Sequence[Any], out_dir: str | Path, *,
                     images: np.ndarray | None = None, tag: str = "embeddings",
                     sprite_size: int = 48) -> Path:
    """Write embeddings, labels and an optional sprite for TensorBoard's projector.

    ``images``: uint8 (n, H, W, 3) or (n, H, W); resized to ``sprite_size`` for the sprite.
    View with ``tensorboard --logdir <out_dir>``, tab "Projector".
    """
    import torch
    from torch.nn.functional import interpolate
    from torch.utils.tensorboard import SummaryWriter

    embeddings = np.asarray(embeddings, dtype=np.float32)
    if embeddings.ndim != 2 or len(embeddings) != len(labels):
        raise ValueError(f"embeddings {embeddings.shape} and {len(labels)} labels do not match")
    label_img = None
    if images is not None:
        imgs = torch.as_tensor(np.asarray(images))
        if imgs.ndim == 3:
            imgs = imgs.unsqueeze(-1).expand(-1, -1, -1, 3)
        imgs = imgs.permute(0, 3, 1, 2).float() / 255.0
        label_img = interpolate(imgs, size=(sprite_size, sprite_size), mode="bilinear", antialias=True)
    out_dir = Path(out_dir)
    with SummaryWriter(log_dir=str(out_dir)) as writer:
        writer.add_embedding(torch.from_numpy(embeddings), metadata=[str(x) for x in labels],
                             label_img=label_img, tag=tag)
    return out_dir
