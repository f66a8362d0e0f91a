"""The one training loop every task uses.

``fit`` trains for a number of epochs, validates after each, keeps the best weights by a
monitored metric (early stopping after ``patience`` epochs without improvement), writes the
best checkpoint atomically, and returns the per-epoch history for plots and W&B. How it
trains is one small ``FitOptions`` (its schedule and its per-epoch hook among them); what it
trains with (model, batches, optimiser, loss, metrics) are its arguments. Batches are ``(inputs, targets)`` (cvtasks.batches);
``inputs`` may be a tensor or a tuple of tensors (passed to the model as separate arguments).
Plain PyTorch rather than Lightning: the loop is short, every task's notebook can read it, and
it adds no framework on top of timm.
"""
from __future__ import annotations

import copy
import math
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from cvtasks.io import atomic_write
from cvtasks.runtime import pick_device, progress_bar, seed_everything

MetricFn = Callable[[torch.Tensor, torch.Tensor], float]


@dataclass
class History:
    """Per-epoch metrics (``epoch``, ``train/loss``, ``val/...``) and the best epoch."""

    monitor: str
    mode: str
    epochs: list[dict[str, float]] = field(default_factory=list)
    best_epoch: int | None = None
    best_score: float | None = None
    stopped_early: bool = False
    checkpoint: Path | None = None
    seconds: float = 0.0

    def series(self, key: str) -> list[float]:
        return [row[key] for row in self.epochs if key in row]

    def frame(self):
        import pandas as pd

        return pd.DataFrame(self.epochs).set_index("epoch")


def _to_device(batch: Any, device: torch.device) -> Any:
    if isinstance(batch, torch.Tensor):
        return batch.to(device, non_blocking=True)
    if isinstance(batch, (list, tuple)):
        return type(batch)(_to_device(b, device) for b in batch)
    return batch


def _forward(model: nn.Module, inputs: Any) -> torch.Tensor:
    return model(*inputs) if isinstance(inputs, (list, tuple)) else model(inputs)


def _batch_size(targets: Any) -> int:
    return len(targets[0] if isinstance(targets, (list, tuple)) else targets)


@torch.no_grad()
def predict(model: nn.Module, batches: Iterable, device: str | torch.device | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Model outputs and targets over batches, concatenated on the CPU."""
    device = pick_device(device)
    model.eval().to(device)
    outputs, targets = [], []
    for inputs, target in batches:
        outputs.append(_forward(model, _to_device(inputs, device)).float().cpu())
        targets.append(target)
    return torch.cat(outputs), torch.cat(targets)


def validate(model: nn.Module, batches: Iterable, loss_fn: Callable[..., torch.Tensor],
             metrics: Mapping[str, MetricFn] | None = None, *, prefix: str = "val",
             device: str | torch.device | None = None) -> dict[str, float]:
    """Mean loss and each metric over the batches, keyed ``<prefix>/<name>``."""
    outputs, targets = predict(model, batches, device)
    result = {f"{prefix}/loss": float(loss_fn(outputs, targets))}
    for name, fn in (metrics or {}).items():
        result[f"{prefix}/{name}"] = float(fn(outputs, targets))
    return result


def _improved(score: float, best: float | None, mode: str, min_delta: float) -> bool:
    if best is None:
        return True
    return score < best - min_delta if mode == "min" else score > best + min_delta


@dataclass(frozen=True)
class FitOptions:
    """How ``fit`` trains. ``monitor``/``mode``: the metric that picks the best epoch
    (``val/...`` needs validation batches; without them ``train/loss`` is monitored).
    ``patience``: stop after that many epochs without improvement (None: never).
    ``scheduler_per_batch``: step the scheduler after every batch (one-cycle and other warm-up
    schedules) instead of once per epoch. ``autocast``: a lower-precision dtype for the forward
    pass (see autocast_dtype). ``train_metrics``: also compute the metrics on the training
    batches (as seen in train mode). ``checkpoint``: where the best weights are saved.
    ``scheduler``: the optimiser's learning-rate schedule, stepped once per epoch (with the
    monitored score for ReduceLROnPlateau) or after every batch. ``on_epoch(row)`` sees each
    epoch's metrics (weight averaging, a study's pruner; it may raise to stop the run)."""

    epochs: int
    monitor: str = "val/loss"
    mode: str = "min"
    patience: int | None = None
    min_delta: float = 0.0
    seed: int | None = None
    grad_clip: float | None = None
    scheduler_per_batch: bool = False
    autocast: torch.dtype | None = None
    train_metrics: bool = False
    restore_best: bool = True
    checkpoint: Path | None = None
    progress: bool = False
    scheduler: Any = None
    on_epoch: Callable[[dict[str, float]], None] | None = None

    def __post_init__(self) -> None:
        if self.epochs < 1:
            raise ValueError(f"epochs = {self.epochs}: must be >= 1")
        if self.mode not in ("min", "max"):
            raise ValueError(f"mode = {self.mode!r}: must be 'min' or 'max'")


def fit(model: nn.Module, train_batches: Iterable, val_batches: Iterable | None = None, *,
        optimizer: torch.optim.Optimizer, loss_fn: Callable[..., torch.Tensor], options: FitOptions,
        metrics: Mapping[str, MetricFn] | None = None, device: str | torch.device | None = None) -> History:
    """Train ``model`` and return its History; the model ends with the best weights (unless
    ``options.restore_best`` is off); ``options.scheduler`` and ``options.on_epoch`` as FitOptions says."""
    o = options
    scheduler, on_epoch = o.scheduler, o.on_epoch
    monitor, mode = (o.monitor, o.mode) if val_batches is not None or not o.monitor.startswith("val/") \
        else ("train/loss", "min")
    if o.seed is not None:
        seed_everything(o.seed)
    device = pick_device(device)
    model.to(device)
    history = History(monitor=monitor, mode=mode, checkpoint=o.checkpoint)
    best_state: dict[str, torch.Tensor] | None = None
    stale = 0
    start = time.perf_counter()
    for epoch in range(1, o.epochs + 1):
        model.train()
        total, count = 0.0, 0
        seen_out, seen_tgt = [], []
        bar = progress_bar(train_batches, o.progress, desc=f"epoch {epoch}/{o.epochs}", leave=False)
        for inputs, targets in bar:
            inputs, targets = _to_device(inputs, device), _to_device(targets, device)
            with torch.autocast(device.type, dtype=o.autocast, enabled=o.autocast is not None):
                outputs = _forward(model, inputs)
            loss = loss_fn(outputs.float(), targets)
            if not math.isfinite(loss.item()):
                raise FloatingPointError(f"loss became {loss.item()} at epoch {epoch}; lower the learning rate")
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            if o.grad_clip is not None:
                nn.utils.clip_grad_norm_(model.parameters(), o.grad_clip)
            optimizer.step()
            if scheduler is not None and o.scheduler_per_batch:
                scheduler.step()
            n = _batch_size(targets)
            total += loss.item() * n
            count += n
            if o.train_metrics and metrics:
                seen_out.append(outputs.detach().float().cpu())
                seen_tgt.append(targets.detach().cpu())
            bar.set_postfix(loss=f"{total / count:.4f}")
        row: dict[str, float] = {"epoch": epoch, "train/loss": total / max(count, 1),
                                 "lr": optimizer.param_groups[0]["lr"]}
        if seen_out:
            out, tgt = torch.cat(seen_out), torch.cat(seen_tgt)
            row.update({f"train/{k}": float(fn(out, tgt)) for k, fn in metrics.items()})
        if val_batches is not None:
            row.update(validate(model, val_batches, loss_fn, metrics, prefix="val", device=device))
        row["seconds"] = time.perf_counter() - start
        if monitor not in row:
            raise KeyError(f"monitor {monitor!r} is not among the epoch's metrics: {sorted(row)}")
        score = row[monitor]
        history.epochs.append(row)
        if on_epoch is not None:
            on_epoch(row)
        if scheduler is not None and not o.scheduler_per_batch:
            if isinstance(scheduler, torch.optim.lr_scheduler.ReduceLROnPlateau):
                scheduler.step(score)
            else:
                scheduler.step()
        if _improved(score, history.best_score, mode, o.min_delta):
            history.best_epoch, history.best_score, stale = epoch, score, 0
            best_state = copy.deepcopy({k: v.detach().cpu() for k, v in model.state_dict().items()})
            if history.checkpoint is not None:
                save_checkpoint(history.checkpoint, model, epoch=epoch, monitor=monitor, score=score)
        else:
            stale += 1
            if o.patience is not None and stale >= o.patience:
                history.stopped_early = True
                break
    history.seconds = time.perf_counter() - start
    if o.restore_best and best_state is not None:
        model.load_state_dict(best_state)
    return history


def autocast_dtype(device: str | torch.device | None = None) -> torch.dtype | None:
    """bfloat16 where it speeds training up, else None (full float32).

    A CUDA GPU with bf16 support, or a CPU with AMX tiles (Intel Sapphire Rapids and later),
    where oneDNN runs bf16 convolutions about 1.5x faster than fp32. Older CPUs emulate
    bf16 and would be slower, so they keep fp32.
    """
    device = pick_device(device)
    if device.type == "cuda":
        return torch.bfloat16 if torch.cuda.is_bf16_supported() else None
    if device.type == "cpu" and torch.backends.mkldnn.is_available() and _cpu_has_amx():
        return torch.bfloat16
    return None


def _cpu_has_amx() -> bool:
    try:
        return bool(torch.cpu._is_amx_tile_supported())
    except AttributeError:  # older torch: no probe, so no claim
        return False


def save_checkpoint(path: str | Path, model: nn.Module, **meta: Any) -> Path:
    """Save the model's state dict with metadata, atomically."""
    state = {"model": {k: v.detach().cpu() for k, v in model.state_dict().items()}, **meta}
    return atomic_write(path, lambda tmp: torch.save(state, tmp))


def load_checkpoint(path: str | Path, model: nn.Module) -> dict[str, Any]:
    """Load weights saved by save_checkpoint into ``model``; return the metadata."""
    state = torch.load(path, map_location="cpu", weights_only=True)
    model.load_state_dict(state.pop("model"))
    return state


def accuracy(outputs: torch.Tensor, targets: torch.Tensor) -> float:
    """Top-1 accuracy of class logits."""
    return (outputs.argmax(1) == targets).float().mean().item()
