"""The wells of the spill task: loading (generator or a photo folder), the stratified split,
and the normalisation the autoencoder sees."""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
from sklearn.model_selection import train_test_split
from torchvision.transforms.functional import gaussian_blur

import config
from cvtasks.data.folder import scan_image_folder
from cvtasks.data.wells import CLASSES, WellImages, WellSettings, generate_wells


def load_data(cfg: config.SpillConfig) -> WellImages:
    """The generator's images, or a user's photos from ``cfg.photos_dir`` (normal/, spill/)."""
    if cfg.photos_dir is None:
        return generate_wells(WellSettings(n_images=cfg.n_images, size=cfg.image_size, seed=cfg.seed),
                              cache_dir=cfg.paths.cache)
    folder = scan_image_folder(cfg.photos_dir, classes=list(CLASSES))
    print(folder.summary())
    if min(folder.counts().values()) < 3:
        raise ValueError(f"{cfg.photos_dir}: need at least 3 images per class, found {folder.counts()}")
    images = np.stack([np.asarray(folder.load(i, cfg.image_size)) for i in range(len(folder))])
    n = len(folder)
    return WellImages(images=images, labels=np.asarray(folder.labels), lighting=np.full(n, "unknown"),
                      smoke=np.zeros(n, bool), spill_area=np.full(n, np.nan))


@dataclass
class Split:
    train: np.ndarray
    val: np.ndarray
    test: np.ndarray


def make_split(labels: np.ndarray, val_fraction: float, test_fraction: float, seed: int) -> Split:
    """Stratified index split; the same for every model of the study."""
    idx = np.arange(len(labels))
    n_test, n_val = round(test_fraction * len(idx)), round(val_fraction * len(idx))
    rest, test = train_test_split(idx, test_size=n_test, stratify=labels, random_state=seed)
    train, val = train_test_split(rest, test_size=n_val, stratify=labels[rest], random_state=seed)
    return Split(np.sort(train), np.sort(val), np.sort(test))


def normal_only(indices: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """The indices among ``indices`` whose image is normal: the autoencoder's training set."""
    return indices[labels[indices] == 0]


NORMALISATIONS = ("local", "per_image", "fixed")


def normalise(images: np.ndarray, mode: str = config.SpillConfig.normalisation,
              sigma: float = config.SpillConfig.normalisation_sigma) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """uint8 (n, H, W, 3) -> float (n, 3, H, W), plus the shift and scale to undo it
    (``normalise_raw`` on the images in [0, 1])."""
    return normalise_raw(raw_images(images), mode, sigma)


def normalise_raw(x: torch.Tensor, mode: str = config.SpillConfig.normalisation,
                  sigma: float = config.SpillConfig.normalisation_sigma) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Float images (n, 3, H, W) in [0, 1] -> normalised, plus the shift and scale to undo it.

    ``local``: each pixel divided by the light around it (the image blurred with a Gaussian of
    ``sigma`` pixels, per channel), which cancels the lighting wherever it varies slowly: a
    global gain, a colour cast, a lamp on one side, a pool of light; a spill, a few pixels of
    light the scene's lighting does not explain, stays. Shift and scale are then per pixel.
    ``per_image``: each channel divided by its own median in the image (grey-world white
    balance), which cancels a global gain (bright / dim light) and a colour cast, while the
    contrast of what is in the image (a glowing spill, smoke) stays as it is. The median
    rather than the mean, so that a large bright spill does not darken its own image.
    ``fixed``: the same affine map for every image.
    """
    if mode == "local":
        k = min(2 * math.ceil(3 * sigma) + 1, 2 * min(x.shape[-2:]) - 1)   # its reflected border fits the image
        mean = gaussian_blur(x, [k, k], [sigma, sigma]).clamp_min(0.02)
        std = mean / 2
    elif mode == "per_image":
        mean = x.flatten(2).median(dim=2).values[..., None, None].clamp_min(0.02)
        std = mean / 2
    elif mode == "fixed":
        mean = torch.full((len(x), 3, 1, 1), 0.5)
        std = torch.full((len(x), 3, 1, 1), 0.25)
    else:
        raise ValueError(f"normalisation {mode!r}: must be one of {', '.join(NORMALISATIONS)}")
    return (x - mean) / std, mean, std


def raw_images(images: np.ndarray) -> torch.Tensor:
    """uint8 (n, H, W, 3) -> float (n, 3, H, W) in [0, 1], before any normalisation."""
    return torch.from_numpy(np.ascontiguousarray(images)).permute(0, 3, 1, 2).float() / 255.0


def to_uint8(x: torch.Tensor, mean: torch.Tensor, std: torch.Tensor) -> np.ndarray:
    """Undo ``normalise``: float (n, 3, H, W) -> uint8 (n, H, W, 3) for display."""
    return ((x * std + mean).clamp(0, 1) * 255).round().byte().permute(0, 2, 3, 1).numpy()


def examples_by_lighting(data: WellImages) -> np.ndarray:
    """One normal and one spill image per lighting condition (the first of each), for figures."""
    picks = [np.flatnonzero((data.lighting == c) & (data.labels == k))[:1]
             for k in (0, 1) for c in np.unique(data.lighting)]
    return np.concatenate(picks)
