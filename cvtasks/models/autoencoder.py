"""A convolutional autoencoder for anomaly detection by reconstruction error.

The encoder halves the resolution ``depth`` times (channels double each time from ``base``),
then a 1x1 convolution squeezes the feature map to ``bottleneck`` channels: the narrower the
bottleneck, the less the model can copy what it never saw in training (a spill) while it still
redraws the well, texture and lighting it learnt from normal images. The decoder mirrors it.
The code stays spatial (a small map, not one vector) so that the reconstruction keeps the
well's position under camera shift; the bottleneck width is the knob that limits it.
"""
from __future__ import annotations

import torch
from torch import nn


def _down(c_in: int, c_out: int) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(c_in, c_out, 3, stride=2, padding=1), nn.BatchNorm2d(c_out),
                         nn.LeakyReLU(0.1, inplace=True))


def _up(c_in: int, c_out: int) -> nn.Sequential:
    return nn.Sequential(nn.ConvTranspose2d(c_in, c_out, 4, stride=2, padding=1), nn.BatchNorm2d(c_out),
                         nn.LeakyReLU(0.1, inplace=True))


def _encoder(channels: int, depth: int, base: int) -> tuple[list[nn.Module], list[int]]:
    widths = [base * 2 ** i for i in range(depth)]
    layers, c = [], channels
    for w in widths:
        layers.append(_down(c, w))
        c = w
    return layers, widths


class ConvAutoencoder(nn.Module):
    """``depth`` stride-2 stages down to a ``bottleneck``-channel code, and back up."""

    def __init__(self, *, depth: int, base: int, bottleneck: int, channels: int = 3):
        super().__init__()
        if depth < 1 or base < 1 or bottleneck < 1:
            raise ValueError(f"depth={depth}, base={base}, bottleneck={bottleneck}: all must be >= 1")
        enc, widths = _encoder(channels, depth, base)
        enc.append(nn.Conv2d(widths[-1], bottleneck, 1))
        self.encoder = nn.Sequential(*enc)
        dec, c = [nn.Conv2d(bottleneck, widths[-1], 1), nn.LeakyReLU(0.1, inplace=True)], widths[-1]
        for w in reversed(widths[:-1]):
            dec.append(_up(c, w))
            c = w
        dec.append(nn.ConvTranspose2d(c, channels, 4, stride=2, padding=1))
        self.decoder = nn.Sequential(*dec)
        self.depth = depth

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.shape[-1] % 2 ** self.depth or x.shape[-2] % 2 ** self.depth:
            raise ValueError(f"input {tuple(x.shape[-2:])}: height and width must be multiples of "
                             f"2**depth = {2 ** self.depth}")
        return self.decoder(self.encoder(x))


class EncoderClassifier(nn.Module):
    """The autoencoder's encoder with global pooling and a linear head: the supervised
    baseline, so that it differs from the autoencoder by its training signal, not its layers."""

    def __init__(self, *, depth: int, base: int, n_classes: int = 2, channels: int = 3):
        super().__init__()
        if depth < 1 or base < 1 or n_classes < 2:
            raise ValueError(f"depth={depth}, base={base}, n_classes={n_classes}: need depth, base >= 1 "
                             "and n_classes >= 2")
        layers, widths = _encoder(channels, depth, base)
        self.features = nn.Sequential(*layers)
        self.head = nn.Linear(widths[-1], n_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x).mean(dim=(2, 3)))
