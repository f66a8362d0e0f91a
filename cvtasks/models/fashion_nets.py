"""Small networks for 28x28 grey images: three families compared in the Fashion notebook.

- ``baseline``: a few conv layers and a dense head (the classic Keras-tutorial CNN).
- ``resnet``: a ResNet adapted to 28x28: a 3x3 stride-1 stem instead of the 7x7/stride-2 stem
  (which would throw away most of a 28-pixel image), then residual stages at 14 and 7 pixels.
  No residual block at 28 pixels: on a 2-core CPU its activations cost more time than the
  accuracy they add.
- ``mobilenet``: MobileNetV2-style inverted residual blocks (1x1 expand, 3x3 depthwise,
  1x1 project), the building block of the EfficientNet family.

``batchnorm=False`` swaps every BatchNorm for an identity (the regularisation ablation).
"""
from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn


def _norm(channels: int, batchnorm: bool) -> nn.Module:
    return nn.BatchNorm2d(channels) if batchnorm else nn.Identity()


def _conv_bn_relu(cin: int, cout: int, batchnorm: bool, stride: int = 1, groups: int = 1,
                  kernel: int = 3, act: bool = True) -> nn.Sequential:
    layers = [nn.Conv2d(cin, cout, kernel, stride, kernel // 2, groups=groups, bias=not batchnorm),
              _norm(cout, batchnorm)]
    if act:
        layers.append(nn.ReLU(inplace=True))
    return nn.Sequential(*layers)


class BaselineCNN(nn.Module):
    """conv(32) - pool - conv(64) - pool - dense(128) - dropout - dense(classes)."""

    def __init__(self, num_classes: int, dropout: float, batchnorm: bool, width: int):
        super().__init__()
        self.features = nn.Sequential(
            _conv_bn_relu(1, width, batchnorm), nn.MaxPool2d(2),
            _conv_bn_relu(width, 2 * width, batchnorm), nn.MaxPool2d(2),
        )
        self.head = nn.Sequential(nn.Flatten(), nn.Linear(2 * width * 7 * 7, 128), nn.ReLU(inplace=True),
                                  nn.Dropout(dropout), nn.Linear(128, num_classes))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x))


class BasicBlock(nn.Module):
    """Two 3x3 convs with a shortcut (1x1 conv when the shape changes)."""

    def __init__(self, cin: int, cout: int, stride: int, batchnorm: bool):
        super().__init__()
        self.body = nn.Sequential(_conv_bn_relu(cin, cout, batchnorm, stride),
                                  _conv_bn_relu(cout, cout, batchnorm, act=False))
        self.shortcut = (nn.Identity() if stride == 1 and cin == cout else
                         _conv_bn_relu(cin, cout, batchnorm, stride, kernel=1, act=False))
        self.act = nn.ReLU(inplace=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.act(self.body(x) + self.shortcut(x))


class ResNet28(nn.Module):
    """Stem 3x3 conv (w) at 28, max pool, ``depth`` basic blocks (2w) at 14, max pool, ``depth``
    basic blocks (4w) at 7, GAP, linear."""

    def __init__(self, num_classes: int, dropout: float, batchnorm: bool, width: int, depth: int):
        super().__init__()
        w = width
        stage2 = [BasicBlock(w if i == 0 else 2 * w, 2 * w, 1, batchnorm) for i in range(depth)]
        stage3 = [BasicBlock(2 * w if i == 0 else 4 * w, 4 * w, 1, batchnorm) for i in range(depth)]
        self.features = nn.Sequential(
            _conv_bn_relu(1, w, batchnorm), nn.MaxPool2d(2), *stage2, nn.MaxPool2d(2), *stage3,
            nn.AdaptiveAvgPool2d(1), nn.Flatten(),
        )
        self.head = nn.Sequential(nn.Dropout(dropout), nn.Linear(4 * w, num_classes))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x))


class InvertedResidual(nn.Module):
    """MobileNetV2 block: 1x1 expand, 3x3 depthwise, 1x1 linear projection, residual when shapes match."""

    def __init__(self, cin: int, cout: int, stride: int, expand: int, batchnorm: bool):
        super().__init__()
        hidden = cin * expand
        self.body = nn.Sequential(
            _conv_bn_relu(cin, hidden, batchnorm, kernel=1),
            _conv_bn_relu(hidden, hidden, batchnorm, stride, groups=hidden),
            _conv_bn_relu(hidden, cout, batchnorm, kernel=1, act=False),
        )
        self.residual = stride == 1 and cin == cout

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.body(x) if self.residual else self.body(x)


class MobileNet28(nn.Module):
    """A MobileNetV2-style net for 28x28: stem, inverted residual blocks at 28/14/7, 1x1 head conv, GAP."""

    def __init__(self, num_classes: int, dropout: float, batchnorm: bool, width: int, expand: int = 4):
        super().__init__()
        w = width
        self.features = nn.Sequential(
            _conv_bn_relu(1, w, batchnorm),
            InvertedResidual(w, w, 1, expand, batchnorm),
            InvertedResidual(w, 2 * w, 2, expand, batchnorm),
            InvertedResidual(2 * w, 2 * w, 1, expand, batchnorm),
            InvertedResidual(2 * w, 4 * w, 2, expand, batchnorm),
            InvertedResidual(4 * w, 4 * w, 1, expand, batchnorm),
            _conv_bn_relu(4 * w, 16 * w, batchnorm, kernel=1),
            nn.AdaptiveAvgPool2d(1), nn.Flatten(),
        )
        self.head = nn.Sequential(nn.Dropout(dropout), nn.Linear(16 * w, num_classes))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x))


FASHION_NETS: dict[str, Callable[..., nn.Module]] = {
    "baseline": BaselineCNN,
    "resnet": ResNet28,
    "mobilenet": MobileNet28,
}


def create_fashion_net(name: str, num_classes: int, *, dropout: float, batchnorm: bool, width: int,
                       depth: int = 1) -> nn.Module:
    """One of FASHION_NETS; ``width``: channels of the first stage; ``depth``: residual blocks per
    stage (the ResNet only, which is why it alone has a default)."""
    if name not in FASHION_NETS:
        raise ValueError(f"unknown fashion net {name!r}; known: {', '.join(FASHION_NETS)}")
    if not 0 <= dropout < 1:
        raise ValueError(f"dropout = {dropout}: must lie in [0, 1)")
    kwargs = {"width": width}
    if name == "resnet":
        kwargs["depth"] = depth
    elif depth != 1:
        raise ValueError(f"depth = {depth}: only the resnet family takes a depth")
    return FASHION_NETS[name](num_classes, dropout=dropout, batchnorm=batchnorm, **kwargs)


def count_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters() if p.requires_grad)
