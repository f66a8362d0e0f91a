"""Fashion-MNIST for the fashion task: the IDX files read once, a stratified validation
hold-out, and an audit that no image sits on two sides of the split."""
from __future__ import annotations

import hashlib
from dataclasses import dataclass, replace

import numpy as np
import pandas as pd
from sklearn.model_selection import train_test_split

import config
from cvtasks.data.fashion_mnist import CLASSES, load_fashion_mnist


@dataclass(frozen=True)
class FashionData:
    """uint8 images (N x 28 x 28) and int64 labels of the train / validation / test splits."""

    x_train: np.ndarray
    y_train: np.ndarray
    x_val: np.ndarray
    y_val: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    classes: tuple[str, ...] = CLASSES

    @property
    def mean_std(self) -> tuple[float, float]:
        """Pixel mean and std of the training split, in [0, 1] units (the normalisation)."""
        x = self.x_train.astype(np.float32) / 255.0
        return float(x.mean()), float(x.std())

    def summary(self) -> pd.DataFrame:
        rows = {name: np.bincount(y, minlength=len(self.classes)) for name, y in
                (("train", self.y_train), ("val", self.y_val), ("test", self.y_test))}
        return pd.DataFrame(rows, index=pd.Index(self.classes, name="class"))

    def subset(self, train_size: int, val_size: int, seed: int) -> "FashionData":
        """Stratified subsets of the train and validation splits (the test set is kept whole)."""
        xt, yt = _stratified(self.x_train, self.y_train, train_size, seed)
        xv, yv = _stratified(self.x_val, self.y_val, val_size, seed)
        return replace(self, x_train=xt, y_train=yt, x_val=xv, y_val=yv)


def _stratified(x: np.ndarray, y: np.ndarray, size: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    if size >= len(y):
        return x, y
    keep, _ = train_test_split(np.arange(len(y)), train_size=size, stratify=y, random_state=seed)
    keep = np.sort(keep)
    return x[keep], y[keep]


def prepare_data(cfg: config.FashionConfig) -> FashionData:
    """The 60k/10k IDX files of ``cfg.mnist_dir``, with a stratified, seeded validation hold-out."""
    raw = load_fashion_mnist(cfg.mnist_dir)
    idx_train, idx_val = train_test_split(np.arange(len(raw.train_labels)), test_size=cfg.val_size,
                                          stratify=raw.train_labels, random_state=cfg.seed)
    data = FashionData(raw.train_images[np.sort(idx_train)], raw.train_labels[np.sort(idx_train)],
                       raw.train_images[np.sort(idx_val)], raw.train_labels[np.sort(idx_val)],
                       raw.test_images, raw.test_labels)
    return data.subset(cfg.train_size, cfg.val_size, cfg.seed)


def cross_split_duplicates(data: FashionData) -> dict[str, int]:
    """Byte-identical images on two sides of the split (train / val / test), counted by pairs of
    sides: the proof that no image is both learnt from and tested on."""
    digests = {name: {hashlib.sha1(x.tobytes()).hexdigest() for x in images}
               for name, images in (("train", data.x_train), ("val", data.x_val), ("test", data.x_test))}
    return {"data/duplicates_train_val": len(digests["train"] & digests["val"]),
            "data/duplicates_train_test": len(digests["train"] & digests["test"]),
            "data/duplicates_val_test": len(digests["val"] & digests["test"])}
