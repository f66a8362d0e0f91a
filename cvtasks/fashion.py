"""Fashion product categories: train and evaluate a classifier on real Fashion-MNIST.

Stages (the same for ``python -m cvtasks run fashion``, ``dvc repro`` and the notebook):
``prepare`` reads the IDX files and holds out a stratified validation split; ``train`` fits the
network of FashionConfig and saves a checkpoint with everything a service needs to use it
(class names, mean/std, architecture), reused when the training config is unchanged;
``evaluate`` scores it on the 10k test set. ``python -m cvtasks.fashion <stage>`` runs one stage.

Batches come from uint8 tensors held in memory and are augmented per batch in torch (random
crop from a 2-pixel padding, horizontal flip, small rotation, brightness): no PIL round trip,
which on a 2-core CPU would cost more than the network.
"""
from __future__ import annotations

import argparse
import json
import math
import pickle
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
from sklearn.model_selection import train_test_split
from torch import nn
from torch.nn import functional as F

import config
from cvtasks.cache import fingerprint
from cvtasks.data.fashion_mnist import CLASSES, load_fashion_mnist
from cvtasks.io import atomic_write, atomic_write_text, write_metrics
from cvtasks.metrics import classification_metrics
from cvtasks.models.fashion_nets import count_parameters, create_fashion_net
from cvtasks.runtime import pick_device, seed_everything
from cvtasks.train import History, accuracy, autocast_dtype, fit, load_checkpoint, save_checkpoint

# Fields of FashionConfig that change the trained model (the checkpoint's cache key).
TRAINING_FIELDS = ("seed", "model", "width", "dropout", "batchnorm", "augment", "optimizer", "lr", "warmup",
                   "weight_decay", "label_smoothing", "batch_size", "epochs", "train_size", "val_size", "precision")


# --- data ----------------------------------------------------------------------------------
@dataclass(frozen=True)
class FashionData:
    """uint8 images (N x 28 x 28) and int64 labels of the train / validation / test splits."""

    x_train: np.ndarray
    y_train: np.ndarray
    x_val: np.ndarray
    y_val: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    classes: tuple[str, ...] = CLASSES

    @property
    def mean_std(self) -> tuple[float, float]:
        """Pixel mean and std of the training split, in [0, 1] units (the normalisation)."""
        x = self.x_train.astype(np.float32) / 255.0
        return float(x.mean()), float(x.std())

    def summary(self) -> pd.DataFrame:
        rows = {name: np.bincount(y, minlength=len(self.classes)) for name, y in
                (("train", self.y_train), ("val", self.y_val), ("test", self.y_test))}
        return pd.DataFrame(rows, index=pd.Index(self.classes, name="class"))

    def subset(self, train_size: int, val_size: int, seed: int) -> "FashionData":
        """Stratified subsets of the train and validation splits (the test set is kept whole)."""
        xt, yt = _stratified(self.x_train, self.y_train, train_size, seed)
        xv, yv = _stratified(self.x_val, self.y_val, val_size, seed)
        return replace(self, x_train=xt, y_train=yt, x_val=xv, y_val=yv)


def _stratified(x: np.ndarray, y: np.ndarray, size: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    if size >= len(y):
        return x, y
    keep, _ = train_test_split(np.arange(len(y)), train_size=size, stratify=y, random_state=seed)
    keep = np.sort(keep)
    return x[keep], y[keep]


def prepare_data(cfg: config.FashionConfig) -> FashionData:
    """The 60k/10k IDX files of ``cfg.mnist_dir``, with a stratified, seeded validation hold-out."""
    raw = load_fashion_mnist(cfg.mnist_dir)
    idx_train, idx_val = train_test_split(np.arange(len(raw.train_labels)), test_size=cfg.val_size,
                                          stratify=raw.train_labels, random_state=cfg.seed)
    data = FashionData(raw.train_images[np.sort(idx_train)], raw.train_labels[np.sort(idx_train)],
                       raw.train_images[np.sort(idx_val)], raw.train_labels[np.sort(idx_val)],
                       raw.test_images, raw.test_labels)
    return data.subset(cfg.train_size, cfg.val_size, cfg.seed)


def save_data(data: FashionData, path: str | Path) -> Path:
    arrays = {k: getattr(data, k) for k in ("x_train", "y_train", "x_val", "y_val", "x_test", "y_test")}

    def write(tmp: Path) -> None:
        with open(tmp, "wb") as fh:
            np.savez_compressed(fh, classes=np.array(data.classes), **arrays)

    return atomic_write(path, write)


def load_data(path: str | Path) -> FashionData:
    with np.load(path, allow_pickle=False) as f:
        return FashionData(*(f[k] for k in ("x_train", "y_train", "x_val", "y_val", "x_test", "y_test")),
                           classes=tuple(str(c) for c in f["classes"]))


# --- batches and augmentation ---------------------------------------------------------------
def augment_batch(x: torch.Tensor, ops: tuple[str, ...], gen: torch.Generator) -> torch.Tensor:
    """Random ``ops`` applied per image to a float batch (B, 1, H, W) in [0, 1]."""
    b, _, h, w = x.shape
    if "crop" in ops:  # pad 2 pixels, take a random 28x28 window: shifts up to 2 pixels
        pad = 2
        padded = F.pad(x, (pad, pad, pad, pad))
        dy = torch.randint(0, 2 * pad + 1, (b,), generator=gen)
        dx = torch.randint(0, 2 * pad + 1, (b,), generator=gen)
        rows = (dy[:, None] + torch.arange(h))[:, :, None]
        cols = (dx[:, None] + torch.arange(w))[:, None, :]
        x = padded[torch.arange(b)[:, None, None], 0, rows, cols].unsqueeze(1)
    if "flip" in ops:
        flip = torch.rand(b, generator=gen) < 0.5
        x = torch.where(flip[:, None, None, None], x.flip(-1), x)
    if "rotate" in ops:  # up to +-10 degrees
        angle = (torch.rand(b, generator=gen) * 2 - 1) * math.radians(10)
        cos, sin = torch.cos(angle), torch.sin(angle)
        theta = torch.stack([torch.stack([cos, -sin, torch.zeros(b)], 1),
                             torch.stack([sin, cos, torch.zeros(b)], 1)], 1)
        grid = F.affine_grid(theta, list(x.shape), align_corners=False)
        x = F.grid_sample(x, grid, align_corners=False, padding_mode="zeros")
    if "brightness" in ops:  # x0.8 .. x1.2
        x = (x * (0.8 + 0.4 * torch.rand(b, 1, 1, 1, generator=gen))).clamp(0, 1)
    return x


class Batches:
    """Normalised (and optionally augmented) batches from in-memory uint8 images."""

    def __init__(self, images: np.ndarray, labels: np.ndarray, batch_size: int, *, mean: float, std: float,
                 shuffle: bool = False, augment: tuple[str, ...] = (), seed: int = 0):
        if len(images) != len(labels):
            raise ValueError(f"{len(images)} images but {len(labels)} labels")
        self.images = torch.from_numpy(np.ascontiguousarray(images))
        self.labels = torch.from_numpy(np.asarray(labels, dtype=np.int64))
        self.batch_size, self.mean, self.std = batch_size, mean, std
        self.shuffle, self.augment = shuffle, tuple(augment)
        self.gen = torch.Generator().manual_seed(seed)

    def __len__(self) -> int:
        return -(-len(self.labels) // self.batch_size)

    def __iter__(self):
        n = len(self.labels)
        order = torch.randperm(n, generator=self.gen) if self.shuffle else torch.arange(n)
        for start in range(0, n, self.batch_size):
            idx = order[start:start + self.batch_size]
            x = self.images[idx].unsqueeze(1).float() / 255.0
            if self.augment:
                x = augment_batch(x, self.augment, self.gen)
            x = ((x - self.mean) / self.std).contiguous(memory_format=torch.channels_last)
            yield x, self.labels[idx]


# --- training -------------------------------------------------------------------------------
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


def train_model(data: FashionData, cfg: config.FashionConfig, *, device: str | torch.device | None = None,
                run: Any = None, progress: bool = False, eval_data: tuple[np.ndarray, np.ndarray] | None = None,
                ) -> tuple[nn.Module, History]:
    """Train ``cfg.model`` on ``data.x_train`` for ``cfg.epochs`` epochs; the best epoch by val/acc wins.

    The learning rate follows a one-cycle schedule stepped per batch: a warm-up over the first
    ``cfg.warmup`` of the steps up to ``cfg.lr``, then a cosine down to ~0, which reaches a
    given accuracy in fewer epochs than a constant or per-epoch schedule. The forward pass runs
    in ``cfg.precision`` (``auto``: bfloat16 where the hardware is fast at it, see
    cvtasks.train.autocast_dtype). ``eval_data``: score another split instead of the validation
    split (the time-to-accuracy benchmark uses the test set).
    """
    seed_everything(cfg.seed)
    mean, std = data.mean_std
    model = create_fashion_net(cfg.model, len(data.classes), dropout=cfg.dropout, batchnorm=cfg.batchnorm,
                               width=cfg.width).to(memory_format=torch.channels_last)
    optimizer = make_optimizer(cfg.optimizer, model.parameters(), cfg.lr, cfg.weight_decay)
    train = Batches(data.x_train, data.y_train, cfg.batch_size, mean=mean, std=std, shuffle=True,
                    augment=cfg.augments, seed=cfg.seed)
    x_val, y_val = eval_data if eval_data is not None else (data.x_val, data.y_val)
    val = Batches(x_val, y_val, 1024, mean=mean, std=std)
    scheduler = torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=cfg.lr, total_steps=cfg.epochs * len(train),
                                                    pct_start=cfg.warmup)
    history = fit(model, train, val, epochs=cfg.epochs, optimizer=optimizer, scheduler=scheduler,
                  scheduler_per_batch=True, loss_fn=nn.CrossEntropyLoss(label_smoothing=cfg.label_smoothing),
                  metrics={"acc": accuracy, "top3": top3}, monitor="val/acc", mode="max",
                  device=device, seed=cfg.seed, run=run, progress=progress,
                  autocast=training_precision(cfg.precision, device))
    return model, history


def training_precision(precision: str, device: str | torch.device | None = None) -> torch.dtype | None:
    """The autocast dtype of ``precision``: ``fp32`` None, ``bf16`` bfloat16, ``auto`` whichever
    is faster on the device (autocast_dtype)."""
    if precision == "fp32":
        return None
    if precision == "bf16":
        return torch.bfloat16
    return autocast_dtype(device)


def training_key(cfg: config.FashionConfig) -> str:
    return fingerprint({f: getattr(cfg, f) for f in TRAINING_FIELDS})


def train_final(cfg: config.FashionConfig, data: FashionData, checkpoint: str | Path | None = None, *,
                device: str | torch.device | None = None, run: Any = None, reuse: bool = True,
                progress: bool = False) -> tuple[nn.Module, dict[str, Any]]:
    """Train (or reuse, when its training config is unchanged) the model saved at ``checkpoint``.

    The checkpoint holds the weights plus what a service needs: class names, normalisation
    mean/std, the architecture, and the training history.
    """
    checkpoint = Path(checkpoint or default_model_path(cfg))
    key = training_key(cfg)
    if reuse and checkpoint.exists():
        try:
            model, meta = load_classifier(checkpoint)
        except (OSError, RuntimeError, KeyError, EOFError, pickle.UnpicklingError) as err:  # unreadable: retrain
            print(f"checkpoint {checkpoint} is unreadable ({type(err).__name__}: {err}); retraining")
        else:
            if meta.get("training_key") == key:
                return model, meta
    model, history = train_model(data, cfg, device=device, run=run, progress=progress)
    mean, std = data.mean_std
    meta = {"training_key": key, "classes": list(data.classes), "mean": mean, "std": std,
            "input_size": 28, "arch": {"name": cfg.model, "width": cfg.width, "dropout": cfg.dropout,
                                       "batchnorm": cfg.batchnorm},
            "config": {f: getattr(cfg, f) for f in TRAINING_FIELDS}, "history": history.epochs,
            "best_epoch": history.best_epoch, "train_seconds": history.seconds,
            "parameters": count_parameters(model)}
    save_checkpoint(checkpoint, model, **meta)
    return model, meta


def load_classifier(path: str | Path) -> tuple[nn.Module, dict[str, Any]]:
    """A trained classifier (eval mode, CPU) and its metadata from a train_final checkpoint."""
    state = torch.load(path, map_location="cpu", weights_only=True)
    arch = state["arch"]
    model = create_fashion_net(arch["name"], len(state["classes"]), dropout=arch["dropout"],
                               batchnorm=arch["batchnorm"], width=arch["width"])
    meta = load_checkpoint(path, model)
    return model.eval(), meta


def default_model_path(cfg: config.FashionConfig) -> Path:
    """config.FASHION_MODEL for the default (full) training config; any other config (quick mode,
    an experiment) gets its own file beside it, so that it never overwrites the full model."""
    key = training_key(cfg)
    if key == training_key(config.FashionConfig()):
        return config.FASHION_MODEL
    return config.FASHION_MODEL.with_name(f"{config.FASHION_MODEL.stem}-{key}{config.FASHION_MODEL.suffix}")


# --- evaluation -----------------------------------------------------------------------------
@torch.no_grad()
def predict_proba(model: nn.Module, images: np.ndarray, mean: float, std: float, *,
                  batch_size: int = 1024, device: str | torch.device | None = None) -> np.ndarray:
    """Class probabilities (n, classes) for uint8 images (n, 28, 28)."""
    device = pick_device(device)
    model.eval().to(device)
    out = [F.softmax(model(x.to(device)), 1).cpu() for x, _ in
           Batches(images, np.zeros(len(images), np.int64), batch_size, mean=mean, std=std)]
    return torch.cat(out).numpy() if out else np.zeros((0, 10), np.float32)


def evaluate_split(model: nn.Module, images: np.ndarray, labels: np.ndarray, meta: dict[str, Any],
                   prefix: str, device: str | torch.device | None = None) -> tuple[dict[str, float], np.ndarray]:
    """Accuracy, top-3, macro-F1, worst-class precision/recall on one split, and the probabilities."""
    probs = predict_proba(model, images, meta["mean"], meta["std"], device=device)
    return classification_metrics(labels, probs, prefix=prefix, top_k=3), probs


def worst_mistakes(labels: np.ndarray, probs: np.ndarray, k: int) -> np.ndarray:
    """Indices of the ``k`` wrong predictions made with the highest confidence."""
    pred = probs.argmax(1)
    wrong = np.flatnonzero(pred != labels)
    return wrong[np.argsort(-probs[wrong, pred[wrong]])][:k]


# --- experiments for the notebook (reduced budget: a subset, few epochs) ---------------------
def _study_row(data: FashionData, cfg: config.FashionConfig, device, **settings) -> dict[str, Any]:
    model, history = train_model(data, replace(cfg, **settings), device=device)
    best = history.epochs[history.best_epoch - 1]
    return {**settings, "val/acc": best["val/acc"], "val/top3": best["val/top3"],
            "train/loss": history.epochs[-1]["train/loss"], "seconds": history.seconds,
            "parameters": count_parameters(model)}


FAMILY_WIDTH = {"baseline": 32, "mobilenet": 16}   # resnet: FashionConfig.width


def study_config(cfg: config.FashionConfig) -> config.FashionConfig:
    """The reduced budget of the experiments: study_model, study_epochs epochs on study_train_size images."""
    return replace(cfg, model=cfg.study_model, width=FAMILY_WIDTH.get(cfg.study_model, cfg.width),
                   epochs=cfg.study_epochs, train_size=cfg.study_train_size, val_size=cfg.study_val_size)


def compare_architectures(data: FashionData, cfg: config.FashionConfig, device=None) -> pd.DataFrame:
    """The three families under the same budget (epochs, images, optimiser, schedule)."""
    small, scfg = data.subset(cfg.study_train_size, cfg.study_val_size, cfg.seed), study_config(cfg)
    rows = [_study_row(small, scfg, device, model=name, width=width)
            for name, width in (("baseline", FAMILY_WIDTH["baseline"]), ("resnet", cfg.width),
                                ("mobilenet", FAMILY_WIDTH["mobilenet"]))]
    return pd.DataFrame(rows).set_index("model")


HP_GRID = {"lr": (1e-4, 1e-3, 1e-2), "batch_size": (32, 64, 128),
           "optimizer": ("adam", "sgd", "adamw"), "dropout": (0.3, 0.5, 0.7)}


def hyperparameter_study(data: FashionData, cfg: config.FashionConfig, base: dict[str, Any] | None = None,
                         device=None) -> pd.DataFrame:
    """One factor at a time around ``base`` over HP_GRID (9 distinct runs instead of 81)."""
    base = base or {"lr": 1e-3, "batch_size": 64, "optimizer": "adamw", "dropout": 0.3}
    small, scfg = data.subset(cfg.study_train_size, cfg.study_val_size, cfg.seed), study_config(cfg)
    rows, seen = [], {}
    for factor, values in HP_GRID.items():
        for value in values:
            settings = {**base, factor: value}
            key = tuple(sorted(settings.items()))
            if key not in seen:
                seen[key] = _study_row(small, scfg, device, **settings)
            rows.append({"factor": factor, **seen[key]})
    return pd.DataFrame(rows)


REGULARISATION_VARIANTS = {
    "no BatchNorm, no dropout, no augmentation": {"batchnorm": False, "dropout": 0.0, "augment": "none"},
    "BatchNorm": {"batchnorm": True, "dropout": 0.0, "augment": "none"},
    "BatchNorm + dropout": {"batchnorm": True, "augment": "none"},
    "+ crop + flip": {"batchnorm": True, "augment": "crop,flip"},
    "+ crop + flip + rotate": {"batchnorm": True, "augment": "crop,flip,rotate"},
    "+ crop + flip + brightness": {"batchnorm": True, "augment": "crop,flip,brightness"},
}


def regularisation_study(data: FashionData, cfg: config.FashionConfig, device=None) -> pd.DataFrame:
    """Each variant trained on the same subset and budget; train-vs-val gap shows overfitting."""
    small, scfg = data.subset(cfg.study_train_size, cfg.study_val_size, cfg.seed), study_config(cfg)
    rows = []
    for name, settings in REGULARISATION_VARIANTS.items():
        model, history = train_model(small, replace(scfg, **settings), device=device)
        mean, std = small.mean_std
        train_acc = float((predict_proba(model, small.x_train, mean, std, device=device).argmax(1)
                           == small.y_train).mean())
        val_acc = history.epochs[history.best_epoch - 1]["val/acc"]
        rows.append({"variant": name, "train/acc": train_acc, "val/acc": val_acc,
                     "gap": train_acc - val_acc, "seconds": history.seconds})
    return pd.DataFrame(rows).set_index("variant")


# --- stages ---------------------------------------------------------------------------------
def evaluate_model(model: nn.Module, meta: dict[str, Any], data: FashionData, cfg: config.FashionConfig,
                   device=None) -> tuple[dict[str, float], np.ndarray]:
    """Test-set metrics plus train-split metrics on ``train_eval_size`` training images, and the
    test set's class probabilities."""
    test, probs = evaluate_split(model, data.x_test, data.y_test, meta, "test", device)
    small = data.subset(cfg.train_eval_size, cfg.val_size, cfg.seed)
    train, _ = evaluate_split(model, small.x_train, small.y_train, meta, "train", device)
    metrics = {**test, **train, "train/seconds": float(meta["train_seconds"]),
               "train/epochs": len(meta["history"]), "model/parameters": int(meta["parameters"])}
    return metrics, probs


def run(cfg: config.FashionConfig, device: str | torch.device | None = None) -> dict[str, float]:
    """prepare -> train (or reuse) -> evaluate; the flat metrics of the test (and train) split."""
    data = prepare_data(cfg)
    model, meta = train_final(cfg, data, device=device)
    return evaluate_model(model, meta, data, cfg, device)[0]


def main(argv: list[str] | None = None) -> int:
    """``python -m cvtasks.fashion prepare|train|evaluate``: the DVC stages, paths explicit."""
    parser = argparse.ArgumentParser(prog="python -m cvtasks.fashion", description=main.__doc__)
    parser.add_argument("stage", choices=("prepare", "train", "evaluate"))
    parser.add_argument("--quick", action="store_true", help="quick mode (also CVTASKS_QUICK=1)")
    parser.add_argument("--data", type=Path, default=config.FASHION_DATA)
    parser.add_argument("--model", type=Path, default=None, help="checkpoint (default: config.FASHION_MODEL)")
    parser.add_argument("--metrics", type=Path, default=None, help="metrics.json (default: reports/fashion/)")
    args = parser.parse_args(argv)
    quick = args.quick or config.quick_from_env()
    cfg = config.get("fashion", quick=quick)
    model_path = args.model or default_model_path(cfg)
    if args.stage == "prepare":
        print(f"wrote {save_data(prepare_data(cfg), args.data)}")
    elif args.stage == "train":
        _, meta = train_final(cfg, load_data(args.data), model_path, progress=True)
        print(f"model at {model_path}: best epoch {meta['best_epoch']}, {meta['train_seconds']:.0f} s")
    else:
        model, meta = load_classifier(model_path)
        metrics, _ = evaluate_model(model, meta, load_data(args.data), cfg)
        path = (atomic_write_text(args.metrics, json.dumps(metrics, indent=2, sort_keys=True) + "\n")
                if args.metrics else write_metrics("fashion", metrics, quick=quick))
        print(json.dumps(metrics, indent=2, sort_keys=True))
        print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
