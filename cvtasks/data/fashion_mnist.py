"""Fashion-MNIST, the real data set, from its original IDX files.

Offline the Debian package ``dataset-fashion-mnist`` puts the four files in
/usr/share/datasets/fashion-mnist/ (config.FASHION_MNIST_DIR); online, torchvision's downloader
fetches the very same files. Both go through one parser, so the two paths give identical arrays.
IDX: a big-endian header (two zero bytes, a type code, the number of dimensions, one uint32 per
dimension) followed by the raw values; files may be gzip-compressed.
"""
from __future__ import annotations

import gzip
from dataclasses import dataclass
from pathlib import Path

import numpy as np

CLASSES = ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
           "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot")
FILES = {
    "train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
    "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
}
DOWNLOAD_HOST = "fashion-mnist.s3-website.eu-central-1.amazonaws.com"  # torchvision's mirror
_IDX_TYPES = {0x08: np.uint8, 0x09: np.int8, 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}


class IdxError(ValueError):
    """A file is not a valid IDX file; the message names the file and the problem."""


def read_idx(path: str | Path) -> np.ndarray:
    """The array stored in an IDX file (``.gz`` or not)."""
    path = Path(path)
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rb") as fh:
        data = fh.read()
    if len(data) < 4 or data[0] != 0 or data[1] != 0:
        raise IdxError(f"{path}: not an IDX file (the first two bytes must be zero)")
    if data[2] not in _IDX_TYPES:
        raise IdxError(f"{path}: unknown IDX type code 0x{data[2]:02x}")
    ndim = data[3]
    header = 4 + 4 * ndim
    if len(data) < header:
        raise IdxError(f"{path}: truncated header ({len(data)} bytes for {ndim} dimensions)")
    shape = tuple(int(d) for d in np.frombuffer(data, ">u4", count=ndim, offset=4))
    dtype = np.dtype(_IDX_TYPES[data[2]])
    expected = int(np.prod(shape)) * dtype.itemsize
    if len(data) - header != expected:
        raise IdxError(f"{path}: {len(data) - header} data bytes, but the header's shape {shape} needs {expected}")
    return np.frombuffer(data, dtype, offset=header).reshape(shape).astype(dtype.newbyteorder("="))


def _find(directory: Path, stem: str) -> Path:
    for name in (f"{stem}.gz", stem):
        if (directory / name).is_file():
            return directory / name
    raise FileNotFoundError(
        f"{directory}: no {stem}[.gz]. Install the Debian package dataset-fashion-mnist "
        f"(offline) or call download_fashion_mnist(root) (online, torchvision's downloader).")


@dataclass(frozen=True)
class FashionMnist:
    """The 60k training and 10k test images (uint8, N x 28 x 28) and labels (int64)."""

    train_images: np.ndarray
    train_labels: np.ndarray
    test_images: np.ndarray
    test_labels: np.ndarray
    classes: tuple[str, ...] = CLASSES


def load_split(directory: str | Path, split: str) -> tuple[np.ndarray, np.ndarray]:
    """Images and labels of ``split`` ("train" or "test") from an IDX folder, checked."""
    if split not in FILES:
        raise ValueError(f"split {split!r}: must be one of {', '.join(FILES)}")
    directory = Path(directory)
    images_file, labels_file = (_find(directory, stem) for stem in FILES[split])
    images, labels = read_idx(images_file), read_idx(labels_file)
    if images.ndim != 3 or images.dtype != np.uint8:
        raise IdxError(f"{images_file}: expected uint8 images N x H x W, got {images.dtype} {images.shape}")
    if labels.ndim != 1 or len(labels) != len(images):
        raise IdxError(f"{labels_file}: {labels.shape} labels for {len(images)} images")
    if labels.size and (labels.min() < 0 or labels.max() >= len(CLASSES)):
        raise IdxError(f"{labels_file}: labels outside 0..{len(CLASSES) - 1}")
    return images, labels.astype(np.int64)


def load_fashion_mnist(directory: str | Path) -> FashionMnist:
    """Both splits from a folder holding the four IDX files (gzip-compressed or not)."""
    train = load_split(directory, "train")
    test = load_split(directory, "test")
    return FashionMnist(*train, *test)


def download_fashion_mnist(root: str | Path) -> Path:
    """Online path: torchvision downloads the IDX files; returns the folder to load from."""
    # torchvision and cvtasks.models (torch): only this online path needs them, not the IDX reader
    from torchvision.datasets import FashionMNIST

    from cvtasks.models.online import host_reachable

    if not host_reachable(DOWNLOAD_HOST, port=80):
        raise ConnectionError(
            f"{DOWNLOAD_HOST} is unreachable, so torchvision cannot download Fashion-MNIST. "
            f"Offline, install the Debian package dataset-fashion-mnist and keep "
            f"FashionConfig.mnist_dir = /usr/share/datasets/fashion-mnist.")
    FashionMNIST(str(root), train=True, download=True)
    FashionMNIST(str(root), train=False, download=True)
    return Path(root) / "FashionMNIST" / "raw"
