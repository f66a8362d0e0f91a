"""The trained fashion classifier on disk: which checkpoint a recipe has, and how to load it.

A leaf that the fashion task (which trains and exports it) and the service (which serves it)
both import, so that neither package imports the other's internals: a checkpoint is a state
dict plus what a consumer needs (class names, normalisation, architecture, the logit offset
chosen on validation, cvtasks.fashion.offset).
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from torch import nn

import config
from cvtasks.cache import fingerprint
from cvtasks.models.fashion_nets import create_fashion_net
from cvtasks.train import load_checkpoint

# Fields of FashionConfig that change the trained model (the checkpoint's cache key).
TRAINING_FIELDS = ("seed", "model", "width", "depth", "dropout", "batchnorm", "augment", "optimizer", "lr", "warmup",
                   "weight_decay", "label_smoothing", "mixup", "swa", "batch_size", "epochs", "train_size", "val_size",
                   "precision")


def training_key(cfg: config.FashionConfig) -> str:
    return fingerprint({f: getattr(cfg, f) for f in TRAINING_FIELDS})


def model_path(cfg: config.FashionConfig) -> Path:
    """``weights/fashion/model.pt`` (committed, with its training record) for the default (full)
    recipe; any other recipe (quick mode, a study's run, a candidate) gets its own file under
    ``models/fashion/``, so that it never overwrites the committed model."""
    if training_key(cfg) == training_key(config.FashionConfig()):
        return config.WEIGHTS_DIR / "fashion" / "model.pt"
    return cfg.paths.models / "fashion" / f"model-{training_key(cfg)}.pt"


def record_path(checkpoint: str | Path) -> Path:
    """The training record beside a checkpoint: ``model.pt`` -> ``model.json``."""
    return Path(checkpoint).with_suffix(".json")


@torch.no_grad()
def fold_offset(model: nn.Module, choice: dict[str, Any] | None) -> nn.Module:
    """``model`` with the chosen logit offset added to its last linear layer's bias (in place)."""
    if choice and choice["offset"]:
        last = [m for m in model.modules() if isinstance(m, nn.Linear)][-1]
        last.bias[choice["class"]] += choice["offset"]
    return model


def load_classifier(path: str | Path, *, offset: bool = True) -> tuple[nn.Module, dict[str, Any]]:
    """A trained classifier (eval mode, CPU) and its metadata from a train_final checkpoint;
    ``offset``: with its validation-chosen logit offset folded in (as served), else as trained."""
    state = torch.load(path, map_location="cpu", weights_only=True)
    arch = state["arch"]
    model = create_fashion_net(arch["name"], len(state["classes"]), dropout=arch["dropout"],
                               batchnorm=arch["batchnorm"], width=arch["width"], depth=arch.get("depth", 1))
    meta = load_checkpoint(path, model)
    return (fold_offset(model, meta.get("logit_offset")) if offset else model).eval(), meta
