"""The pretrained backbone, split into a frozen trunk (run once, cached) and a trainable tail.

One pass of the backbone over every image keeps two things: the pooled penultimate embedding
(the frozen model's input) and the activations entering the last ``tail_blocks`` blocks (the
fine-tuned model's input). Fine-tuning then trains only those blocks and the head on the
cached activations: the frozen part is the same for every epoch, so running it once instead
of every epoch saves most of the CPU time. The price: no image augmentation while
fine-tuning (the cached activations are of the unaugmented images).
"""
from __future__ import annotations

import numpy as np
import torch
from torch import nn

from cvtasks.brands.data import BrandData, to_tensor
from cvtasks.cache import cached_arrays
from cvtasks.runtime import pick_device

FEATURES_VERSION = 1


def split_backbone(backbone: nn.Module, tail_blocks: int) -> tuple[nn.Module, nn.Module]:
    """(trunk, tail): the trunk runs once and is cached; the tail is what fine-tuning trains.

    The tail is the last ``tail_blocks`` residual blocks plus the final convolution and
    pooling, and returns the pooled penultimate features. EfficientNets (timm ``blocks``) and
    ResNets (timm ``layer4``) are supported.
    """
    if hasattr(backbone, "blocks"):
        blocks = [b for stage in backbone.blocks for b in stage]
        head = [backbone.conv_head, backbone.bn2]
        stem = [backbone.conv_stem, backbone.bn1]
    elif hasattr(backbone, "layer4"):
        blocks = [b for layer in (backbone.layer1, backbone.layer2, backbone.layer3, backbone.layer4) for b in layer]
        head = []
        stem = [backbone.conv1, backbone.bn1, backbone.act1, backbone.maxpool]
    else:
        raise ValueError(f"cannot split {type(backbone).__name__}: expected a timm EfficientNet or ResNet")
    if not 1 <= tail_blocks < len(blocks):
        raise ValueError(f"tail_blocks = {tail_blocks}: must lie between 1 and {len(blocks) - 1}")
    trunk = nn.Sequential(*stem, *blocks[:-tail_blocks])
    tail = nn.Sequential(*blocks[-tail_blocks:], *head, backbone.global_pool)
    return trunk, tail


def backbone_features(encoder, data: BrandData, tail_blocks: int, *, batch_size: int = 64,
                      device=None, progress: bool = False, cache_dir=None) -> dict[str, np.ndarray]:
    """``embeddings`` (n, d): pooled penultimate features; ``activations``: what enters the tail.

    Images go in at their own size (the generator frames its photos; no resize or crop), with
    the encoder's normalisation. Cached by encoder, data and split point.
    """
    device = pick_device(device)
    key = {"encoder": encoder.name, "data": data.key, "tail_blocks": tail_blocks,
           "norm": [encoder.preprocessing.mean, encoder.preprocessing.std], "version": FEATURES_VERSION}

    @torch.no_grad()
    def compute():
        trunk, tail = split_backbone(encoder.backbone, tail_blocks)
        trunk.eval().to(device), tail.eval().to(device)
        acts, embs = [], []
        for start in range(0, len(data.images), batch_size):
            x = to_tensor(data.images[start:start + batch_size], encoder.preprocessing.mean,
                          encoder.preprocessing.std).to(device)
            a = trunk(x)
            acts.append(a.half().cpu().numpy())     # half precision: half the cache, ample for features
            embs.append(tail(a).float().cpu().numpy())
            if progress:
                print(f"\rbackbone {min(start + batch_size, len(data.images))}/{len(data.images)}", end="")
        return {"activations": np.concatenate(acts), "embeddings": np.concatenate(embs)}

    return cached_arrays("brands-features", key, compute, cache_dir)
