"""Training the fashion classifier: one recipe (FashionConfig's fields) for the study's trials and
the final model alike.

Batches come from uint8 tensors held in memory and are augmented per batch in torch (crop from a
2-pixel padding, flip, rotation, brightness, random erasing; no PIL round trip, which on a
2-core CPU would cost more than the network); mixup blends pairs of images and their labels;
the learning rate follows a one-cycle schedule stepped per batch; SWA averages the weights of
the last epochs; bfloat16 autocast where the hardware is fast at it. Predictions can average an
image and its mirror image (test-time flip).
"""
from __future__ import annotations

import json
import pickle
from collections.abc import Callable, Iterator
from dataclasses import fields
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

import config
from cvtasks.batches import Batches, augment
from cvtasks.fashion import offset as logit_offset
from cvtasks.fashion.data import FashionData
from cvtasks.io import atomic_write_text
from cvtasks.models.fashion_classifier import TRAINING_FIELDS, load_classifier, model_path, record_path, training_key
from cvtasks.models.fashion_nets import count_parameters, create_fashion_net
from cvtasks.provenance import device_name, file_sha256, git_commit, utc_now
from cvtasks.runtime import pick_device, seed_everything
from cvtasks.train import (
    FitOptions,
    History,
    accuracy,
    autocast_dtype,
    fit,
    save_checkpoint,
)


def make_optimizer(name: str, params, lr: float, weight_decay: float) -> torch.optim.Optimizer:
    if name == "adam":
        return torch.optim.Adam(params, lr=lr)
    if name == "adamw":
        return torch.optim.AdamW(params, lr=lr, weight_decay=weight_decay)
    if name == "sgd":
        return torch.optim.SGD(params, lr=lr, momentum=0.9, nesterov=True, weight_decay=weight_decay)
    raise ValueError(f"optimizer {name!r}: must be adam, sgd or adamw")


def top3(outputs: torch.Tensor, targets: torch.Tensor) -> float:
    return (outputs.topk(3, dim=1).indices == targets[:, None]).any(1).float().mean().item()


def batches(images: np.ndarray, labels: np.ndarray, batch_size: int, *, mean: float, std: float,
            shuffle: bool = False, ops: tuple[str, ...] = (), seed: int = 0) -> Batches:
    """Normalised (and, with ``ops``, augmented) batches of uint8 (n, 28, 28) images."""
    def prepare(x: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
        x = x.unsqueeze(1).float() / 255.0
        if ops:
            x = augment(x, ops, gen)
        return ((x - mean) / std).contiguous(memory_format=torch.channels_last)

    return Batches(torch.from_numpy(np.ascontiguousarray(images)), torch.from_numpy(np.asarray(labels, np.int64)),
                   batch_size, shuffle=shuffle, seed=seed, transform=prepare)


class Mixup:
    """Batches whose images are blended in random pairs, x = l * a + (1 - l) * b with l drawn
    from Beta(alpha, alpha), and the targets blended alike (soft labels)."""

    def __init__(self, inner: Batches, alpha: float, n_classes: int, seed: int):
        self.inner, self.alpha, self.n_classes = inner, alpha, n_classes
        self.gen = torch.Generator().manual_seed(seed)
        self.beta = torch.distributions.Beta(alpha, alpha)

    def __len__(self) -> int:
        return len(self.inner)

    def __iter__(self) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        for x, y in self.inner:
            lam = float(self.beta.sample())
            perm = torch.randperm(len(y), generator=self.gen)
            soft = F.one_hot(y, self.n_classes).float()
            yield lam * x + (1 - lam) * x[perm], lam * soft + (1 - lam) * soft[perm]


def training_precision(precision: str, device: Any = None) -> torch.dtype | None:
    """``fp32`` None, ``bf16`` bfloat16, ``auto`` whichever is faster on the device."""
    if precision == "fp32":
        return None
    if precision == "bf16":
        return torch.bfloat16
    return autocast_dtype(device)


def train_model(data: FashionData, cfg: config.FashionConfig, *, device: Any = None,
                on_epoch: Callable[[dict[str, float]], None] | None = None) -> tuple[nn.Module, History]:
    """Train ``cfg``'s recipe on ``data.x_train``; the best epoch by val/acc wins (with SWA, the
    averaged weights of the last quarter of the epochs)."""
    seed_everything(cfg.seed)
    device = pick_device(device)
    if device.type == "cuda":   # fixed input shapes: let cuDNN pick the fastest convolution once
        torch.backends.cudnn.benchmark = True
    mean, std = data.mean_std
    model = create_fashion_net(cfg.model, len(data.classes), dropout=cfg.dropout, batchnorm=cfg.batchnorm,
                               width=cfg.width, depth=cfg.depth).to(memory_format=torch.channels_last)
    optimizer = make_optimizer(cfg.optimizer, model.parameters(), cfg.lr, cfg.weight_decay)
    train = batches(data.x_train, data.y_train, cfg.batch_size, mean=mean, std=std, shuffle=True, ops=cfg.augments,
                    seed=cfg.seed)
    loader = Mixup(train, cfg.mixup, len(data.classes), cfg.seed) if cfg.mixup > 0 else train
    val = batches(data.x_val, data.y_val, 1024, mean=mean, std=std)
    scheduler = torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=cfg.lr, total_steps=cfg.epochs * len(train),
                                                    pct_start=cfg.warmup)
    swa = torch.optim.swa_utils.AveragedModel(model) if cfg.swa else None
    swa_start = max(1, int(round(0.75 * cfg.epochs)))

    def each_epoch(row: dict[str, float]) -> None:
        if swa is not None and row["epoch"] >= swa_start:
            swa.update_parameters(model)
        if on_epoch is not None:
            on_epoch(row)

    history = fit(model, loader, val, optimizer=optimizer,
                  loss_fn=nn.CrossEntropyLoss(label_smoothing=cfg.label_smoothing), metrics={"acc": accuracy, "top3": top3},
                  device=device,
                  options=FitOptions(epochs=cfg.epochs, monitor="val/acc", mode="max", seed=cfg.seed,
                                     scheduler=scheduler, scheduler_per_batch=True, on_epoch=each_epoch,
                                     autocast=training_precision(cfg.precision, device), restore_best=swa is None))
    if swa is not None:   # the averaged weights, with batch-norm statistics recomputed for them
        torch.optim.swa_utils.update_bn(((x.to(device),) for x, _ in train), swa, device=device)
        model.load_state_dict(swa.module.state_dict())
    return model, history


def export_dir(cfg: config.FashionConfig) -> Path:
    """Where the export writes model.onnx and model.int8.onnx (the quick model's apart)."""
    return cfg.paths.models / "fashion" / ("quick" if cfg.quick else "")


def train_final(cfg: config.FashionConfig, data: FashionData, checkpoint: str | Path | None = None, *,
                device: Any = None, reuse: bool = True) -> tuple[nn.Module, dict[str, Any]]:
    """Train (or reuse, when its recipe is unchanged) the model saved at ``checkpoint``, with
    what a service needs: class names, normalisation, architecture, and the training history.
    A new training also writes its record beside the checkpoint (``record_path``)."""
    checkpoint = Path(checkpoint or model_path(cfg))
    key = training_key(cfg)
    if reuse and checkpoint.exists():
        try:
            model, meta = load_classifier(checkpoint, offset=False)
        except (OSError, RuntimeError, KeyError, EOFError, pickle.UnpicklingError) as err:
            print(f"checkpoint {checkpoint} is unreadable ({type(err).__name__}: {err}); retraining")
        else:
            if meta.get("training_key") == key:
                if "logit_offset" not in meta:   # trained before the offset rule: chosen once, kept
                    meta = save_trained(checkpoint, model, {**meta, "logit_offset": choose_offset(model, meta, data)})
                return model, {**meta, "reused": True}
    device = pick_device(device)
    model, history = train_model(data, cfg, device=device)
    mean, std = data.mean_std
    meta = {"training_key": key, "classes": list(data.classes), "mean": mean, "std": std, "input_size": 28,
            "arch": {"name": cfg.model, "width": cfg.width, "depth": cfg.depth, "dropout": cfg.dropout,
                     "batchnorm": cfg.batchnorm},
            "config": {f: getattr(cfg, f) for f in TRAINING_FIELDS}, "history": history.epochs,
            "best_epoch": history.best_epoch, "train_seconds": history.seconds, "parameters": count_parameters(model),
            "tta_flip": cfg.tta_flip, "device": device_name(device), "git_commit": git_commit(),
            "date_utc": utc_now()}
    meta["logit_offset"] = choose_offset(model, meta, data, device=device)
    return model, save_trained(checkpoint, model, meta)


def choose_offset(model: nn.Module, meta: dict[str, Any], data: FashionData, device: Any = None) -> dict[str, Any]:
    """The worst-recalled class's logit offset, chosen on the validation images (offset.choose)."""
    probs = predict_proba(model, data.x_val, meta["mean"], meta["std"], tta_flip=meta["tta_flip"], device=device)
    choice = logit_offset.choose(np.log(np.clip(probs, 1e-12, None)), data.y_val, config.FASHION_OFFSET_GRID)
    return {**choice, "class_name": meta["classes"][choice["class"]], "git_commit": git_commit()}


def save_trained(checkpoint: Path, model: nn.Module, meta: dict[str, Any]) -> dict[str, Any]:
    """Save the raw weights with their metadata (the offset as a choice, not folded) and the record."""
    save_checkpoint(checkpoint, model, **meta)
    write_record(checkpoint, meta)
    return meta


def write_record(checkpoint: Path, meta: dict[str, Any]) -> Path:
    """The training record a committed checkpoint carries: recipe, commit, device, seconds,
    validation history and the checkpoint's SHA-256 (so a reader can tell it is these weights)."""
    keep = ("training_key", "config", "device", "git_commit", "date_utc", "train_seconds", "best_epoch",
            "parameters", "logit_offset", "history")
    record = ({k: meta[k] for k in keep} | {k: meta[k] for k in ("git_commit_note",) if k in meta}
              | {"checkpoint": checkpoint.name, "sha256": file_sha256(checkpoint)})
    return atomic_write_text(record_path(checkpoint), json.dumps(record, indent=1) + "\n")


@torch.no_grad()
def predict_proba(model: nn.Module, images: np.ndarray, mean: float, std: float, *, tta_flip: bool = False,
                  batch_size: int = 1024, device: Any = None) -> np.ndarray:
    """Class probabilities (n, classes) for uint8 images (n, 28, 28); ``tta_flip`` averages each
    image's with its mirror image's."""
    device = pick_device(device)
    model.eval().to(device)
    out = []
    for x, _ in batches(images, np.zeros(len(images), np.int64), batch_size, mean=mean, std=std):
        x = x.to(device)
        p = F.softmax(model(x), 1)
        if tta_flip:
            p = (p + F.softmax(model(x.flip(-1)), 1)) / 2
        out.append(p.cpu())
    return torch.cat(out).numpy() if out else np.zeros((0, 10), np.float32)


def recipe(cfg: config.FashionConfig) -> dict[str, Any]:
    """The fields of a recipe, for tables and W&B."""
    return {f.name: getattr(cfg, f.name) for f in fields(cfg) if f.name in TRAINING_FIELDS or f.name == "tta_flip"}
