"""Training the brand models with the shared loop: our head on frozen backbone embeddings, the
backbone's last block fine-tuned with that head on cached activations, and a small CNN from
scratch. All are class-weighted and early-stopped on validation macro-F1."""
from __future__ import annotations

import copy
import time
from dataclasses import dataclass
from functools import partial

import numpy as np
import torch
from sklearn.metrics import f1_score
from torch import nn

import config
from cvtasks.batches import Batches, as_float, augment
from cvtasks.brands.data import BrandData, downscale, to_tensor
from cvtasks.brands.features import split_backbone
from cvtasks.models.brands_nets import BrandHead, FineTuned, SmallCNN
from cvtasks.runtime import one_thread, seed_everything
from cvtasks.train import FitOptions, History, autocast_dtype, fit, predict

CNN_MEAN, CNN_STD = (0.5, 0.5, 0.5), (0.25, 0.25, 0.25)   # the small CNN's own normalisation


def class_weights(labels: np.ndarray, n_classes: int) -> torch.Tensor:
    """'Balanced' weights n / (k * count): each class weighs the same in the loss in total."""
    counts = np.bincount(labels, minlength=n_classes).astype(np.float64)
    return torch.tensor(len(labels) / (n_classes * np.maximum(counts, 1)), dtype=torch.float32)


def macro_f1(outputs: torch.Tensor, targets: torch.Tensor) -> float:
    return float(f1_score(targets.numpy(), outputs.argmax(1).numpy(), average="macro", zero_division=0))


def _accuracy(outputs: torch.Tensor, targets: torch.Tensor) -> float:
    return float((outputs.argmax(1) == targets).float().mean())


METRICS = {"acc": _accuracy, "macro_f1": macro_f1}


@dataclass
class Trained:
    """A trained model, its history and the time it took."""

    name: str
    model: nn.Module
    history: History
    seconds: float
    seed: int


def _labels(data: BrandData, part: str) -> torch.Tensor:
    return torch.as_tensor(data.labels[data.idx(part)], dtype=torch.long)


def train_head(embeddings: np.ndarray, data: BrandData, cfg: config.BrandsConfig, *, seed: int,
               weighted: bool = True, device=None) -> Trained:
    """Our head on frozen backbone embeddings, early-stopped on validation macro-F1."""
    seed_everything(seed)
    n_classes = len(data.classes)
    tr, va = data.idx("train"), data.idx("val")
    head = BrandHead(embeddings.shape[1], cfg.hidden_dim, n_classes, cfg.dropout)
    x = torch.as_tensor(embeddings, dtype=torch.float32)
    weight = class_weights(data.labels[tr], n_classes) if weighted else None
    start = time.perf_counter()
    with one_thread():
        history = fit(head, Batches(x[tr], _labels(data, "train"), cfg.batch_size, shuffle=True, seed=seed),
                      Batches(x[va], _labels(data, "val"), 256),
                      optimizer=torch.optim.AdamW(head.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay),
                      loss_fn=nn.CrossEntropyLoss(weight=weight), metrics=METRICS, device=device,
                      options=FitOptions(epochs=cfg.epochs, monitor="val/macro_f1", mode="max",
                                         patience=cfg.patience, seed=seed, train_metrics=True))
    return Trained("frozen", head, history, time.perf_counter() - start, seed)


def finetune(encoder, head: BrandHead, activations: np.ndarray, data: BrandData, cfg: config.BrandsConfig, *,
             seed: int, device=None) -> Trained:
    """The backbone's last blocks and a copy of the trained head, trained on cached activations.

    Starting from the trained head (rather than a random one) keeps the first updates from
    wrecking the pretrained blocks; the blocks get a lower learning rate than the head.
    """
    seed_everything(seed)
    _, tail = split_backbone(copy.deepcopy(encoder.backbone), cfg.finetune_blocks)
    model = FineTuned(tail, copy.deepcopy(head))
    tr, va = data.idx("train"), data.idx("val")
    acts = torch.from_numpy(activations)      # half precision in the cache; float per batch
    optimizer = torch.optim.AdamW([{"params": model.tail.parameters(), "lr": cfg.finetune_lr},
                                   {"params": model.head.parameters(), "lr": cfg.finetune_head_lr}],
                                  weight_decay=cfg.weight_decay)
    start = time.perf_counter()
    history = fit(model, Batches(acts[tr], _labels(data, "train"), cfg.batch_size, shuffle=True, seed=seed,
                                 transform=as_float),
                  Batches(acts[va], _labels(data, "val"), 128, transform=as_float), optimizer=optimizer,
                  loss_fn=nn.CrossEntropyLoss(weight=class_weights(data.labels[tr], len(data.classes))),
                  metrics=METRICS, device=device,
                  options=FitOptions(epochs=cfg.finetune_epochs, monitor="val/macro_f1", mode="max", seed=seed,
                                     train_metrics=True))
    return Trained("finetuned", model, history, time.perf_counter() - start, seed)


def cnn_inputs(data: BrandData, size: int) -> torch.Tensor:
    return to_tensor(downscale(data.images, size), CNN_MEAN, CNN_STD)


def train_small_cnn(data: BrandData, cfg: config.BrandsConfig, *, seed: int, device=None) -> Trained:
    """The small CNN from scratch on ``cnn_size``-pixel images with flips and shifts,
    class-weighted, on a cosine schedule; bfloat16 where the hardware is fast at it."""
    seed_everything(seed)
    x = cnn_inputs(data, cfg.cnn_size).contiguous(memory_format=torch.channels_last)
    tr, va = data.idx("train"), data.idx("val")
    model = SmallCNN(len(data.classes), cfg.dropout).to(memory_format=torch.channels_last)
    optimizer = torch.optim.AdamW(model.parameters(), lr=cfg.cnn_lr, weight_decay=cfg.weight_decay)
    shift = partial(augment, ops=("crop", "flip"), pad=cfg.cnn_shift)
    start = time.perf_counter()
    history = fit(model, Batches(x[tr], _labels(data, "train"), cfg.cnn_batch_size, shuffle=True, seed=seed,
                                 transform=lambda b, g: shift(b, gen=g)),
                  Batches(x[va], _labels(data, "val"), 256), optimizer=optimizer,
                  loss_fn=nn.CrossEntropyLoss(weight=class_weights(data.labels[tr], len(data.classes))),
                  metrics=METRICS, device=device,
                  options=FitOptions(epochs=cfg.cnn_epochs, monitor="val/macro_f1", mode="max",
                                     patience=cfg.patience, seed=seed, train_metrics=True,
                                     autocast=autocast_dtype(device),
                                     scheduler=torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=cfg.cnn_epochs)))
    return Trained("small_cnn", model, history, time.perf_counter() - start, seed)


def probabilities(model: nn.Module, x: np.ndarray | torch.Tensor, device=None, batch_size: int = 128) -> np.ndarray:
    """Softmax outputs of ``model`` over inputs ``x`` (embeddings, activations or images)."""
    x = torch.as_tensor(x)
    logits, _ = predict(model, Batches(x, torch.zeros(len(x)), batch_size, transform=as_float), device)
    return torch.softmax(logits, 1).numpy()
