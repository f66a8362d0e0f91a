"""Experiment tracking: one W&B run per task run, the same for the CLI and the notebooks.

Mode: ``CVTASKS_WANDB`` (online / offline / disabled) when set; else ``WANDB_MODE`` when set;
else online when ``WANDB_API_KEY`` is set and offline otherwise. Offline runs land in
./wandb and are uploaded later with ``wandb sync wandb/offline-run-*``; ``wandb leet
wandb/latest-run`` browses one in the terminal. The tests disable tracking (tests/conftest.py),
except the test that reads a run back.

A run is named ``<task>-<quick|full>-<cli|notebook>-<commit>`` and tagged with the same, so a
reviewer can filter. History holds only training curves, each model on its own step axis
(``<model>/epoch``); the summary is set once, to exactly the task's metrics.json.
"""
from __future__ import annotations

import io
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

import config
from cvtasks.provenance import file_sha256, git_commit

MODE_ENV = "CVTASKS_WANDB"
MODES = ("online", "offline", "disabled")
JOB_TYPES = ("train", "study", "evaluate", "load-test")


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
        return str(value.relative_to(config.ROOT)) if value.is_relative_to(config.ROOT) else str(value)
    if isinstance(value, Mapping):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value


class Tracker:
    """The W&B run of one task run. ``caller``: cli or notebook; ``job_type``: JOB_TYPES."""

    def __init__(self, task: str, settings: Any = None, *, caller: str = "cli", job_type: str = "train",
                 mode: str | None = None, wandb_dir: str | Path | None = None):
        if job_type not in JOB_TYPES:
            raise ValueError(f"job_type {job_type!r}: must be one of {', '.join(JOB_TYPES)}")
        import wandb

        self._wandb = wandb
        cfg = settings.to_dict() if hasattr(settings, "to_dict") else dict(settings or {})
        quick = bool(cfg.get("quick", False))
        commit = git_commit()
        self.task, self.mode = task, mode or wandb_mode()
        self.name = f"{task}-{'quick' if quick else 'full'}-{caller}-{commit}"
        self.tags = [task, "quick" if quick else "full", caller, f"commit:{commit}", job_type]
        self._inputs: dict[str, str] = {}
        self._run = wandb.init(
            project=config.WANDB_PROJECT, entity=config.WANDB_ENTITY, group=task, job_type=job_type,
            name=self.name, tags=self.tags, config={**_plain(cfg), "commit": commit, "quick": quick, "caller": caller},
            dir=str(wandb_dir or config.WANDB_DIR), mode=self.mode, reinit="create_new",
            settings=wandb.Settings(silent=True, console="off"),
        )
        # The summary is set once, to the task's metrics; nothing logged to the history (curves,
        # media) may leave its last value there.
        self._run.define_metric("*", summary="none")
        self._axes: set[str] = set()
        self.finished = False

    # --- where the run is ------------------------------------------------------------------
    @property
    def id(self) -> str | None:
        return None if self.mode == "disabled" else self._run.id

    @property
    def folder(self) -> Path | None:
        """The run's folder (wandb/offline-run-... or wandb/run-...); None when disabled."""
        return None if self.mode == "disabled" else Path(self._run.dir).parent

    def describe(self) -> dict[str, str]:
        """Name, id, mode, folder and how to upload it: the first output of every notebook."""
        if self.mode == "disabled":
            return {"W&B": f"disabled ({MODE_ENV}=disabled or WANDB_MODE=disabled): nothing is recorded"}
        folder = self.folder
        shown = folder.relative_to(config.ROOT) if folder.is_relative_to(config.ROOT) else folder
        info = {"W&B run": self.name, "id": self.id, "W&B mode": self.mode, "folder": str(shown)}
        if self.mode == "offline":
            info["upload"] = f"wandb sync {shown}"
            info["browse here"] = f"wandb leet {shown}"
        else:
            info["url"] = self._run.url or ""
        return info

    # --- history: training curves, one step axis per model ---------------------------------
    def log_history(self, model: str, epochs: Sequence[Mapping[str, Any]]) -> None:
        """Per-epoch dicts (cvtasks.train.History.epochs) as ``<model>/...`` against ``<model>/epoch``."""
        axis = f"{model}/epoch"
        if axis not in self._axes:
            self._run.define_metric(axis, summary="none")
            self._run.define_metric(f"{model}/*", step_metric=axis, summary="none")
            self._axes.add(axis)
        for i, row in enumerate(epochs, start=1):
            values = {f"{model}/{k}": float(v) for k, v in row.items() if k != "epoch" and np.isscalar(v)}
            self._run.log({axis: int(row.get("epoch", i)), **values})

    # --- media -----------------------------------------------------------------------------
    def log_png(self, key: str, png: bytes) -> None:
        """A figure already rendered to PNG (the same pixels the notebook shows)."""
        from PIL import Image

        self._run.log({key: self._wandb.Image(Image.open(io.BytesIO(png)))})

    def log_table(self, key: str, frame: Any, images: Mapping[str, Sequence[Any]] | None = None) -> None:
        """A pandas DataFrame as a W&B table; ``images``: extra columns of pictures (arrays)."""
        table = frame.reset_index() if frame.index.name or getattr(frame.index, "names", [None])[0] else frame
        mixed = [c for c in table.columns if table[c].dtype == object and
                 len({type(v) for v in table[c] if v is not None}) > 1]
        table = table.astype({c: str for c in mixed})   # W&B types a column by its first row: mixed ones as text
        columns = [str(c) for c in table.columns]
        rows = [list(r) for r in table.itertuples(index=False)]
        for name, pictures in (images or {}).items():
            columns.append(name)
            for row, picture in zip(rows, pictures):
                row.append(self._wandb.Image(np.asarray(picture)))
        self._run.log({key: self._wandb.Table(columns=columns, data=[[_cell(v) for v in r] for r in rows])})

    def log_confusion(self, key: str, y_true: Sequence[int], y_pred: Sequence[int], classes: Sequence[str]) -> None:
        self._run.log({key: self._wandb.plot.confusion_matrix(y_true=list(map(int, y_true)),
                                                              preds=list(map(int, y_pred)),
                                                              class_names=list(classes), title=key)})

    def log_roc_pr(self, key: str, y_true: Sequence[int], scores: np.ndarray, labels: Sequence[str]) -> None:
        """ROC and precision-recall charts; ``scores``: (n, len(labels)) per-class scores."""
        y = list(map(int, y_true))
        probs = np.asarray(scores, dtype=float)
        self._run.log({f"{key}/roc": self._wandb.plot.roc_curve(y, probs, labels=list(labels), title=f"{key} ROC"),
                       f"{key}/pr": self._wandb.plot.pr_curve(y, probs, labels=list(labels), title=f"{key} PR")})

    def log_curves(self, key: str, xs: Sequence[float], ys: Mapping[str, Sequence[float]], xname: str) -> None:
        """Several lines over one x axis (an active-learning curve, a learning curve)."""
        self._run.log({key: self._wandb.plot.line_series(xs=list(xs), ys=[list(v) for v in ys.values()],
                                                         keys=list(ys), title=key, xname=xname)})

    # --- artifacts -------------------------------------------------------------------------
    def log_artifact(self, name: str, kind: str, files: Sequence[str | Path] = (), *,
                     references: Sequence[str | Path] = (), metadata: Mapping[str, Any] | None = None) -> None:
        """A dataset or model artifact: small ``files`` are copied in, large ones are added as
        ``references`` (a checksum and a path, no upload)."""
        if self.mode == "disabled":
            return
        artifact = self._wandb.Artifact(name, type=kind, metadata=_plain(dict(metadata or {})))
        for path in files:
            artifact.add_file(str(path))
        for path in references:
            artifact.add_reference(Path(path).resolve().as_uri(), checksum=True)
        self._run.log_artifact(artifact)

    def use_artifact(self, name: str, kind: str, path: str | Path) -> None:
        """Declare that this run consumes the artifact ``name`` (made from ``path``). Online, W&B
        links the two runs (lineage); offline runs cannot look artifacts up, so the name and the
        file's SHA-256 go into the run's config instead."""
        if self.mode == "disabled":
            return
        digest = file_sha256(path)
        self._inputs[name] = digest
        self._run.config.update({"inputs": dict(self._inputs)}, allow_val_change=True)
        if self.mode == "online":
            artifact = self._wandb.Artifact(name, type=kind, metadata={"sha256": digest})
            artifact.add_file(str(path))
            self._run.use_artifact(artifact)

    # --- the end ---------------------------------------------------------------------------
    def finish(self, summary: Mapping[str, float], *, failed: bool = False) -> None:
        """Set the summary to ``summary`` and close the run (exit code 1 when ``failed``)."""
        if self.finished:
            return
        self.finished = True
        self._run.summary.update(dict(summary))
        self._run.finish(exit_code=1 if failed else 0)


def _cell(value: Any) -> Any:
    """Table cells W&B can store: numpy scalars as Python numbers."""
    if isinstance(value, np.generic):
        return value.item()
    return value


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
    if out_dir.is_dir():   # a re-run replaces the export (the projector reads one per folder)
        import shutil

        shutil.rmtree(out_dir)
    with SummaryWriter(log_dir=str(out_dir)) as writer:
        writer.add_embedding(torch.from_numpy(embeddings), metadata=[str(x) for x in labels],
                             label_img=label_img, tag=tag)
    return out_dir
