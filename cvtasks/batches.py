"""The one batch iterator of every training loop: batches cut from tensors held in memory.

Every task's data fits in memory (cached embeddings and activations, 64-pixel wells,
Fashion-MNIST), so a DataLoader's workers and per-sample ``__getitem__`` calls would only
add cost on two cores. ``Batches`` indexes whole batches at once and applies an optional
``transform`` to each batch of inputs (augmentation, a cast from half precision,
normalisation), with its own seeded generator so that runs repeat exactly.
"""
from __future__ import annotations

import math
from collections.abc import Callable, Iterator, Sequence

import torch
from torch.nn import functional as F

Inputs = torch.Tensor | tuple[torch.Tensor, ...]
Transform = Callable[[torch.Tensor, torch.Generator], torch.Tensor]


class Batches:
    """``(inputs, targets)`` batches. ``inputs``: a tensor, or a tuple of tensors with one row per
    example (passed to the model as separate arguments); ``targets=None`` yields the inputs as
    targets too (an autoencoder). ``transform(x, generator)`` changes the first input tensor
    of each batch. With ``shuffle`` the order is drawn anew each epoch."""

    def __init__(self, inputs: Inputs, targets: torch.Tensor | None, batch_size: int, *, shuffle: bool = False,
                 seed: int = 0, transform: Transform | None = None, drop_last: bool = False):
        self.inputs = tuple(inputs) if isinstance(inputs, (tuple, list)) else (inputs,)
        n = len(self.inputs[0])
        if any(len(x) != n for x in self.inputs) or (targets is not None and len(targets) != n):
            raise ValueError(f"inputs and targets differ in length: {[len(x) for x in self.inputs]}, "
                             f"{None if targets is None else len(targets)}")
        if batch_size < 1:
            raise ValueError(f"batch_size = {batch_size}: must be >= 1")
        self.targets, self.batch_size, self.shuffle = targets, batch_size, shuffle
        self.transform, self.drop_last = transform, drop_last and n > batch_size
        self.gen = torch.Generator().manual_seed(seed)

    def __len__(self) -> int:
        n = len(self.inputs[0])
        return n // self.batch_size if self.drop_last else math.ceil(n / self.batch_size)

    def __iter__(self) -> Iterator[tuple[Inputs, torch.Tensor]]:
        n = len(self.inputs[0])
        order = torch.randperm(n, generator=self.gen) if self.shuffle else torch.arange(n)
        for b in range(len(self)):
            idx = order[b * self.batch_size:(b + 1) * self.batch_size]
            xs = [x[idx] for x in self.inputs]
            if self.transform is not None:
                xs[0] = self.transform(xs[0], self.gen)
            inputs = xs[0] if len(xs) == 1 else tuple(xs)
            yield inputs, (xs[0] if self.targets is None else self.targets[idx])


def as_float(x: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
    """Half-precision cached features to float32, one batch at a time (half the memory)."""
    return x.float()


def augment(x: torch.Tensor, ops: Sequence[str], gen: torch.Generator, *, pad: int = 2,
            max_degrees: float = 10.0, brightness: float = 0.2) -> torch.Tensor:
    """Random ``ops`` applied per image to a float batch (B, C, H, W): ``crop`` (pad ``pad``
    pixels, take a random window of the original size), ``flip`` (horizontal, half the images),
    ``rotate`` (up to +-``max_degrees``), ``brightness`` (x 1 -+ ``brightness``), ``erase``
    (random erasing: half the images lose a rectangle of 2-25 % of their area to zero),
    ``dihedral`` (a quarter turn and a mirror per batch: for top-down views)."""
    b, _, h, w = x.shape
    if "crop" in ops:
        padded = F.pad(x, (pad, pad, pad, pad))
        dy = torch.randint(0, 2 * pad + 1, (b,), generator=gen)
        dx = torch.randint(0, 2 * pad + 1, (b,), generator=gen)
        rows = (dy[:, None] + torch.arange(h))[:, None, :, None]
        cols = (dx[:, None] + torch.arange(w))[:, None, None, :]
        x = padded[torch.arange(b)[:, None, None, None], torch.arange(x.shape[1])[None, :, None, None], rows, cols]
    if "flip" in ops:
        flip = torch.rand(b, generator=gen) < 0.5
        x = torch.where(flip[:, None, None, None], x.flip(-1), x)
    if "rotate" in ops:
        angle = (torch.rand(b, generator=gen) * 2 - 1) * math.radians(max_degrees)
        cos, sin, zero = torch.cos(angle), torch.sin(angle), torch.zeros(b)
        theta = torch.stack([torch.stack([cos, -sin, zero], 1), torch.stack([sin, cos, zero], 1)], 1)
        grid = F.affine_grid(theta, list(x.shape), align_corners=False)
        x = F.grid_sample(x, grid, align_corners=False, padding_mode="zeros")
    if "brightness" in ops:
        x = (x * (1 - brightness + 2 * brightness * torch.rand(b, 1, 1, 1, generator=gen))).clamp(0, 1)
    if "erase" in ops:
        area = (0.02 + 0.23 * torch.rand(b, generator=gen)) * h * w
        aspect = torch.exp((torch.rand(b, generator=gen) - 0.5) * 2 * math.log(3))
        eh = (area * aspect).sqrt().clamp(1, h).long()
        ew = (area / aspect).sqrt().clamp(1, w).long()
        top = (torch.rand(b, generator=gen) * (h - eh + 1)).long()
        left = (torch.rand(b, generator=gen) * (w - ew + 1)).long()
        rows, cols = torch.arange(h)[None, :, None], torch.arange(w)[None, None, :]
        box = ((rows >= top[:, None, None]) & (rows < (top + eh)[:, None, None])
               & (cols >= left[:, None, None]) & (cols < (left + ew)[:, None, None]))
        box &= (torch.rand(b, generator=gen) < 0.5)[:, None, None]
        x = x.masked_fill(box[:, None], 0.0)
    if "dihedral" in ops:
        x = torch.rot90(x, int(torch.randint(4, (1,), generator=gen)), dims=(2, 3))
        if torch.rand(1, generator=gen).item() < 0.5:
            x = x.flip(3)
        x = x.contiguous()
    return x
