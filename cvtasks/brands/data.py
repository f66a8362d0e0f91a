"""The chandelier photos: generated (cvtasks.data.chandeliers) or a user's folder, split by
product model; and the image conversions the models share."""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch

import config
from cvtasks.cache import fingerprint
from cvtasks.data import chandeliers
from cvtasks.data.folder import scan_image_folder


@dataclass
class BrandData:
    """Images (n, s, s, 3) uint8 with brand labels, product-model groups and the split."""

    images: np.ndarray
    labels: np.ndarray
    groups: np.ndarray
    classes: list[str]
    split: np.ndarray          # 'train' / 'val' / 'test' per image
    key: dict[str, Any]        # what made the data: the cache key of everything derived from it
    skipped: list[tuple[Path, str]] = field(default_factory=list)

    def idx(self, name: str) -> np.ndarray:
        return np.flatnonzero(self.split == name)

    def models_in(self, name: str) -> int:
        """Product models on one side of the split."""
        return len(np.unique(self.groups[self.idx(name)]))

    def counts(self) -> pd.DataFrame:
        """Images and product models per brand and split."""
        frame = pd.DataFrame({"brand": np.array(self.classes)[self.labels], "split": self.split,
                              "model": self.groups})
        table = frame.pivot_table(index="brand", columns="split", values="model", aggfunc="count", fill_value=0)
        table["models"] = frame.groupby("brand")["model"].nunique()
        table["total"] = frame.groupby("brand").size()
        return table.loc[self.classes].sort_values("total", ascending=False)


def load_data(cfg: config.BrandsConfig) -> BrandData:
    """The generated chandeliers, or ``cfg.photos_dir`` when ``cfg.source == 'photos'``."""
    if cfg.source == "photos":
        return load_photos(cfg.photos_dir, cfg.image_size, cfg.test_fraction, cfg.val_fraction, cfg.seed)
    data = chandeliers.load_chandeliers(cfg.n_images, cfg.image_size, cfg.seed, cfg.paths.cache)
    split = chandeliers.split_by_model(data["labels"], data["models"], cfg.test_fraction, cfg.val_fraction, cfg.seed)
    key = {"source": "generator", "version": chandeliers.GENERATOR_VERSION, "n_images": cfg.n_images,
           "image_size": cfg.image_size, "seed": cfg.seed}
    return BrandData(data["images"], data["labels"], data["models"], list(chandeliers.BRAND_NAMES), split, key)


def load_photos(root: Path, image_size: int, test_fraction: float, val_fraction: float, seed: int) -> BrandData:
    """A folder ``<brand>/*.jpg`` or ``<brand>/<model>/*.jpg``; unreadable files are skipped.

    Photos in a model subfolder form one group (they never straddle train and test); a photo
    directly in a brand folder is its own group.
    """
    folder = scan_image_folder(root)
    if len(folder) == 0:
        raise FileNotFoundError(f"{root}: no readable images ({folder.summary()})")
    groups = np.array([str(p.parent.relative_to(root)) if p.parent.parent != root else str(p.relative_to(root))
                       for p in folder.paths])
    _, group_ids = np.unique(groups, return_inverse=True)
    images = np.stack([np.asarray(folder.load(i, image_size)) for i in range(len(folder))])
    labels = np.array(folder.labels)
    split = chandeliers.split_by_model(labels, group_ids, test_fraction, val_fraction, seed)
    stat = [(str(p.relative_to(root)), p.stat().st_size, p.stat().st_mtime_ns) for p in folder.paths]
    key = {"source": "photos", "root": str(root), "files": fingerprint(stat), "image_size": image_size}
    return BrandData(images, labels, group_ids, folder.classes, split, key, folder.skipped)


def to_tensor(images: np.ndarray, mean, std) -> torch.Tensor:
    """uint8 (n, h, w, 3) to a normalised float tensor (n, 3, h, w)."""
    x = torch.from_numpy(np.ascontiguousarray(images)).permute(0, 3, 1, 2).float().div_(255)
    return (x - torch.tensor(mean).view(1, 3, 1, 1)) / torch.tensor(std).view(1, 3, 1, 1)


def downscale(images: np.ndarray, size: int) -> np.ndarray:
    """Images resized to ``size`` x ``size`` (area averaging)."""
    from PIL import Image

    if images.shape[1] == size:
        return images
    return np.stack([np.asarray(Image.fromarray(im).resize((size, size), Image.BOX)) for im in images])
