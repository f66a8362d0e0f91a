"""The brands task's networks: our head on backbone features, the backbone's trainable tail
with that head, and a small CNN trained from scratch."""
from __future__ import annotations

import torch
from torch import nn


class BrandHead(nn.Module):
    """Our head: a hidden Linear layer (the embedding we plot), dropout, the classifier."""

    def __init__(self, in_dim: int, hidden_dim: int, n_classes: int, dropout: float):
        super().__init__()
        self.hidden = nn.Sequential(nn.Linear(in_dim, hidden_dim), nn.ReLU())
        self.dropout = nn.Dropout(dropout)
        self.classifier = nn.Linear(hidden_dim, n_classes)

    def embed(self, x: torch.Tensor) -> torch.Tensor:
        return self.hidden(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.dropout(self.hidden(x)))


class FineTuned(nn.Module):
    """The backbone's tail (trainable) followed by our head, fed with cached trunk activations."""

    def __init__(self, tail: nn.Module, head: BrandHead):
        super().__init__()
        self.tail, self.head = tail, head

    def embed(self, x: torch.Tensor) -> torch.Tensor:
        return self.head.embed(self.tail(x))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.tail(x))


class SmallCNN(nn.Module):
    """Four conv blocks (conv, batch norm, ReLU, pooling), global pooling, dropout, a classifier."""

    def __init__(self, n_classes: int, dropout: float, widths=(16, 32, 64, 128)):
        super().__init__()
        layers, c_in = [], 3
        for c in widths:
            layers += [nn.Conv2d(c_in, c, 3, padding=1, bias=False), nn.BatchNorm2d(c), nn.ReLU(inplace=True),
                       nn.MaxPool2d(2)]
            c_in = c
        self.features = nn.Sequential(*layers, nn.AdaptiveAvgPool2d(1), nn.Flatten())
        self.classifier = nn.Sequential(nn.Dropout(dropout), nn.Linear(c_in, n_classes))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.features(x))
