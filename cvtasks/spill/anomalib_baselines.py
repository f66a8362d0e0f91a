"""PatchCore and PaDiM from anomalib, on the offline ImageNet weights of efficientnet_lite0.

anomalib's models build their feature extractor with timm (``features_only``) and would
download ImageNet weights from the hub; here the extractor is built without weights and given
the packaged efficientnet_lite0 weights (cvtasks.models; every tensor of the extractor must
load). The torch models are used directly, without anomalib's Lightning engine: PatchCore
collects patch embeddings of the normal training images and keeps a coreset; PaDiM fits a
Gaussian per patch position. Both score an image by its most anomalous patch.
"""
from __future__ import annotations

import warnings
from collections.abc import Mapping

import numpy as np
import torch
from torch.nn import functional as F

import config
from cvtasks.models import create_image_encoder
from cvtasks.runtime import pick_device, seed_everything

METHODS = ("patchcore", "padim")
IMAGENET_MEAN, IMAGENET_STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)


def _model(method: str, layers: tuple[str, ...], coreset: float, n_features: int):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from anomalib.models.image.padim.torch_model import PadimModel
        from anomalib.models.image.patchcore.torch_model import PatchcoreModel
    if method == "patchcore":
        return PatchcoreModel(backbone=config.OFFLINE_IMAGE_ENCODER, layers=list(layers), pre_trained=False,
                              num_neighbors=9)
    if method == "padim":
        return PadimModel(backbone=config.OFFLINE_IMAGE_ENCODER, layers=list(layers), pre_trained=False,
                          n_features=n_features)
    raise ValueError(f"anomalib method {method!r}: one of {', '.join(METHODS)}")


def load_offline_weights(extractor: torch.nn.Module) -> None:
    """The packaged efficientnet_lite0 weights into anomalib's timm feature extractor (strict)."""
    source = create_image_encoder(config.OFFLINE_IMAGE_ENCODER).backbone.state_dict()
    wanted = extractor.state_dict()
    extractor.load_state_dict({k: source[k] for k in wanted}, strict=True)


def _batches(images: np.ndarray, size: int, batch_size: int = 64):
    mean = torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1)
    std = torch.tensor(IMAGENET_STD).view(1, 3, 1, 1)
    for start in range(0, len(images), batch_size):
        x = torch.from_numpy(images[start:start + batch_size]).permute(0, 3, 1, 2).float() / 255.0
        x = F.interpolate(x, size=(size, size), mode="bilinear", align_corners=False, antialias=True)
        yield (x - mean) / std


@torch.no_grad()
def fit_and_score(method: str, normal_train: np.ndarray, parts: Mapping[str, np.ndarray], cfg: config.SpillConfig, *,
                  seed: int, device=None) -> dict[str, np.ndarray]:
    """Fit ``method`` on the normal training images; an anomaly score per image of each part
    (``cfg``: anomalib_size, the method's layers, patchcore_coreset, padim_features)."""
    size, coreset, n_features = cfg.anomalib_size, cfg.patchcore_coreset, cfg.padim_features
    layers = cfg.patchcore_layers if method == "patchcore" else cfg.padim_layers
    seed_everything(seed)   # PatchCore's coreset projection, PaDiM's random feature subset
    device = pick_device(device)
    model = _model(method, layers, coreset, n_features)
    load_offline_weights(model.feature_extractor.feature_extractor)
    model.to(device).train()
    model.feature_extractor.eval()
    for x in _batches(normal_train, size):
        model(x.to(device))
    if method == "patchcore":
        model.subsample_embedding(coreset)
    else:
        model.fit()
    model.eval()
    return {name: np.concatenate([model(x.to(device)).pred_score.reshape(-1).float().cpu().numpy()
                                  for x in _batches(images, size)]).astype(float)
            for name, images in parts.items()}
