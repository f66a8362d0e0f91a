"""Training the spill models: the autoencoder on normal images only, and the supervised CNN
baseline on labelled images of both classes, both with the shared loop and the same rule for
stopping (cvtasks.train.fit: a cosine schedule over at most ``epochs``, the best epoch by a
validation loss, early stopping after ``patience`` epochs without improvement)."""
from __future__ import annotations

from dataclasses import dataclass
from functools import partial
from typing import Any

import numpy as np
import torch
from sklearn.metrics import roc_auc_score
from torch import nn

import config
from cvtasks.batches import Batches, augment
from cvtasks.models.autoencoder import ConvAutoencoder, EncoderClassifier
from cvtasks.runtime import seed_everything
from cvtasks.spill.data import normalise_raw
from cvtasks.spill.scores import anomaly_scores
from cvtasks.train import FitOptions, History, accuracy, fit, predict

LOSSES = {"mse": nn.MSELoss, "l1": nn.L1Loss}


@dataclass(frozen=True)
class Budget:
    """The same training budget for every model of the study."""

    epochs: int
    patience: int | None
    lr: float
    batch_size: int


VIEWS = ("none", "dihedral", "photometric")


@dataclass(frozen=True)
class AutoencoderData:
    """What an autoencoder trains on and is watched on: the normal training images (normalised;
    raw too, for photometric views), the validation images and their labels, and the scale and
    shift their normalisation removed (the scores put them back)."""

    x_train: torch.Tensor
    raw_train: torch.Tensor | None
    x_val: torch.Tensor
    y_val: np.ndarray
    val_scale: torch.Tensor | None = None
    val_shift: torch.Tensor | None = None


def _dihedral(x: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
    """A quarter turn and a mirror per batch: the camera looks straight down on the well, so a
    turned or mirrored normal well is still a normal well."""
    return augment(x, ("dihedral",), gen)


def photometric(raw: torch.Tensor, gen: torch.Generator, *, normalisation: str = config.SpillConfig.normalisation,
                sigma: float = config.SpillConfig.normalisation_sigma, max_gain: float = 2.5) -> torch.Tensor:
    """Raw images (B, 3, H, W) in [0, 1] under other light, then normalised as the model sees
    them: a global exposure gain (log-uniform 1/4 .. ``max_gain``, highlights clipped) and, for
    half of them, a smooth pool of light; what a camera's exposure and a lamp change."""
    b, _, h, w = raw.shape
    gain = torch.exp(torch.empty(b, 1, 1, 1).uniform_(np.log(0.25), np.log(max_gain), generator=gen))
    yy, xx = torch.meshgrid(torch.linspace(0, 1, h), torch.linspace(0, 1, w), indexing="ij")
    cy, cx = torch.rand(b, 1, 1, generator=gen), torch.rand(b, 1, 1, generator=gen)
    radius = 0.15 + 0.2 * torch.rand(b, 1, 1, generator=gen)
    pool = torch.exp(-((yy - cy) ** 2 + (xx - cx) ** 2) / (2 * radius ** 2))
    lamp = (torch.rand(b, 1, 1, generator=gen) < 0.5).float()
    field = 1 + lamp * (1.5 * torch.rand(b, 1, 1, generator=gen) * pool
                        - 0.5 * torch.rand(b, 1, 1, generator=gen) * (1 - pool))
    return normalise_raw((raw * gain * field[:, None]).clamp(0, 1), normalisation, sigma)[0]


@torch.no_grad()
def reconstruct(model: nn.Module, x: torch.Tensor, batch_size: int = 256,
                device: str | torch.device | None = None) -> torch.Tensor:
    return predict(model, Batches(x, None, batch_size), device)[0]


def train_autoencoder(data: AutoencoderData, cfg: config.SpillConfig, budget: Budget, *, seed: int,
                      device: str | torch.device | None = None) -> tuple[ConvAutoencoder, History]:
    """Fit a ConvAutoencoder (``cfg``: depth, base_channels, bottleneck, loss) to reconstruct the
    normal training images.

    Each epoch records the loss on the normal validation images (``val/normal_loss``, which picks
    the best epoch: no spill label is needed for it) and the validation ROC-AUC of the anomaly
    score (``cfg.score``, ``cfg.score_sigma``), to watch detection. ``cfg.augment``: train on
    turned and mirrored views (``dihedral``), or on the raw training images under other light
    (``photometric``), normalised as ``cfg.normalisation`` and ``cfg.normalisation_sigma`` say
    (cvtasks.spill.data.normalise_raw).
    """
    loss, views, x_train, raw_train = cfg.loss, cfg.augment, data.x_train, data.raw_train
    val_scale, val_shift, score, sigma = data.val_scale, data.val_shift, cfg.score, cfg.score_sigma
    if loss not in LOSSES:
        raise ValueError(f"loss {loss!r}: must be one of {', '.join(LOSSES)}")
    seed_everything(seed)
    model = ConvAutoencoder(depth=cfg.depth, base=cfg.base_channels, bottleneck=cfg.bottleneck)
    y_val = torch.as_tensor(np.asarray(data.y_val))
    loss_fn = LOSSES[loss]()

    def normal_loss(out: torch.Tensor, tgt: torch.Tensor) -> float:
        return float(loss_fn(out[y_val == 0], tgt[y_val == 0]))

    def val_auc(out: torch.Tensor, tgt: torch.Tensor) -> float:
        return float(roc_auc_score(y_val.numpy(), anomaly_scores(out, tgt, score, sigma, val_scale, val_shift)))

    if views not in VIEWS:
        raise ValueError(f"views {views!r}: must be one of {', '.join(VIEWS)}")
    if views == "photometric":
        if raw_train is None:
            raise ValueError("photometric views need the raw training images (raw_train)")
        relight = partial(photometric, normalisation=cfg.normalisation, sigma=cfg.normalisation_sigma)
        train = Batches(raw_train, None, budget.batch_size, shuffle=True, seed=seed, transform=relight)
    else:
        train = Batches(x_train, None, budget.batch_size, shuffle=True, seed=seed,
                        transform=_dihedral if views == "dihedral" else None)
    optimizer = torch.optim.Adam(model.parameters(), lr=budget.lr)
    history = fit(model, train, Batches(data.x_val, None, 256), optimizer=optimizer, loss_fn=loss_fn,
                  metrics={"normal_loss": normal_loss, "roc_auc": val_auc}, device=device,
                  options=FitOptions(epochs=budget.epochs, monitor="val/normal_loss", mode="min",
                                     patience=budget.patience, seed=seed,
                                     scheduler=torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, budget.epochs)))
    return model.cpu().eval(), history


def train_classifier(x_train: torch.Tensor, y_train: np.ndarray, x_val: torch.Tensor, y_val: np.ndarray,
                     cfg: config.SpillConfig, budget: Budget, *, seed: int,
                     device: str | torch.device | None = None) -> tuple[EncoderClassifier, History]:
    """The autoencoder's encoder (``cfg.depth``, ``cfg.base_channels``) with a two-class head,
    trained on labelled spills too, under the autoencoder's budget: the same epochs, schedule and
    early stopping (on the validation loss)."""
    seed_everything(seed)
    model = EncoderClassifier(n_classes=2, depth=cfg.depth, base=cfg.base_channels)
    yt, yv = torch.as_tensor(np.asarray(y_train)).long(), torch.as_tensor(np.asarray(y_val)).long()
    optimizer = torch.optim.Adam(model.parameters(), lr=budget.lr)
    history = fit(model, Batches(x_train, yt, budget.batch_size, shuffle=True, seed=seed), Batches(x_val, yv, 256),
                  optimizer=optimizer, loss_fn=nn.CrossEntropyLoss(), metrics={"acc": accuracy}, device=device,
                  options=FitOptions(epochs=budget.epochs, monitor="val/loss", mode="min",
                                     patience=budget.patience, seed=seed,
                                     scheduler=torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, budget.epochs)))
    return model.cpu().eval(), history


def classifier_scores(model: nn.Module, x: torch.Tensor, device: Any = None) -> np.ndarray:
    """Probability of the spill class."""
    logits = predict(model, Batches(x, torch.zeros(len(x)), 256), device)[0]
    return torch.softmax(logits, 1)[:, 1].numpy().astype(float)
