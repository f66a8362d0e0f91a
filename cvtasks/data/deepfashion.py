"""DeepFashion (17 clothing categories): the Hugging Face dataset and its class-folder layout.

Online, ``SaffalPoosh/deepFashion-with-masks`` comes through ``datasets.load_dataset`` (parquet
shards; each row has ``images`` (an Image feature, stored as ``{"bytes", "path"}``), ``cloth_type``
(the category name), ``gender``, ``pose``, ``pid``, ``caption`` and masks). Offline, or for a
shop's own photos, the same images laid out as ``<root>/<category>/<image>`` are read with
cvtasks.data.folder. Both give a DeepFashionDataset of (tensor, label) pairs.
"""
from __future__ import annotations

import io
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from PIL import Image
from torch.utils.data import Dataset

from cvtasks.data.folder import scan_image_folder
from cvtasks.io import atomic_write

HF_DATASET = "SaffalPoosh/deepFashion-with-masks"
IMAGE_COLUMN = "images"
LABEL_COLUMN = "cloth_type"
CATEGORIES = ("Blouses_Shirts", "Cardigans", "Denim", "Dresses", "Graphic_Tees", "Jackets_Coats",
              "Jackets_Vests", "Leggings", "Pants", "Rompers_Jumpsuits", "Shirts_Polos", "Shorts",
              "Skirts", "Suiting", "Sweaters", "Sweatshirts_Hoodies", "Tees_Tanks")


def load_hf_deepfashion(name: str = HF_DATASET, split: str = "train", cache_dir: str | Path | None = None):
    """The Hugging Face dataset (online only): a ``datasets.Dataset`` of rows as described above."""
    try:
        import datasets
    except ModuleNotFoundError as err:
        raise ModuleNotFoundError(
            "loading DeepFashion from the Hugging Face hub needs the package 'datasets' "
            "(pip install datasets). Without it, lay the images out as <root>/<category>/<image> "
            "and use DeepFashionDataset.from_folder(root).") from err
    # cvtasks.models pulls in torch: only this online path needs the check
    from cvtasks.models.online import host_reachable

    if not host_reachable("huggingface.co"):
        raise ConnectionError(
            f"huggingface.co is unreachable, so {name!r} cannot be downloaded. Offline, lay the "
            "images out as <root>/<category>/<image> and use DeepFashionDataset.from_folder(root).")
    return datasets.load_dataset(name, split=split, cache_dir=str(cache_dir) if cache_dir else None)


def read_parquet_rows(paths: Iterable[str | Path]) -> list[dict[str, Any]]:
    """Rows of the dataset's parquet shards (as downloaded from the hub's ``data/`` folder)."""
    import pandas as pd

    try:
        frames = [pd.read_parquet(p) for p in paths]
    except ImportError as err:
        raise ImportError("reading the dataset's parquet shards needs pyarrow (pip install pyarrow)") from err
    return [row for frame in frames for row in frame.to_dict("records")]


def decode_image(value: Any) -> Image.Image:
    """An RGB PIL image from what a row holds: a PIL image (decoded by ``datasets``), the stored
    ``{"bytes": ..., "path": ...}`` struct, raw bytes, or a file path."""
    if isinstance(value, Image.Image):
        return value.convert("RGB")
    if isinstance(value, Mapping):
        if value.get("bytes"):
            value = value["bytes"]
        elif value.get("path"):
            value = value["path"]
        else:
            raise ValueError("image struct has neither bytes nor path")
    if isinstance(value, (bytes, bytearray)):
        with Image.open(io.BytesIO(value)) as im:
            return im.convert("RGB")
    if isinstance(value, (str, Path)):
        with Image.open(value) as im:
            return im.convert("RGB")
    raise TypeError(f"cannot read an image from {type(value).__name__}")


def _label_of(row: Mapping[str, Any], label_column: str, classes: Sequence[str]) -> int:
    if label_column not in row:
        raise KeyError(f"row has no {label_column!r} column; columns: {', '.join(map(str, row))}")
    value = row[label_column]
    if isinstance(value, str):
        if value not in classes:
            raise ValueError(f"{label_column} = {value!r} is not a known category ({', '.join(classes)})")
        return list(classes).index(value)
    index = int(value)  # a ClassLabel column stores the index
    if not 0 <= index < len(classes):
        raise ValueError(f"{label_column} = {index}: outside 0..{len(classes) - 1}")
    return index


class DeepFashionDataset(Dataset):
    """(image tensor, label) pairs; images are decoded lazily and passed through ``transform``."""

    def __init__(self, images: Sequence[Callable[[], Image.Image]], labels: Sequence[int],
                 classes: Sequence[str], transform: Callable[[Image.Image], Any] | None = None):
        self._images, self.labels, self.classes = list(images), list(labels), list(classes)
        self.transform = transform

    def __len__(self) -> int:
        return len(self.labels)

    def image(self, index: int) -> Image.Image:
        return self._images[index]()

    def __getitem__(self, index: int):
        image = self.image(index)
        return (self.transform(image) if self.transform else image), self.labels[index]

    def with_transform(self, transform: Callable[[Image.Image], Any]) -> "DeepFashionDataset":
        return DeepFashionDataset(self._images, self.labels, self.classes, transform)

    @classmethod
    def from_rows(cls, rows: Sequence[Mapping[str, Any]], classes: Sequence[str] = CATEGORIES, *,
                  image_column: str = IMAGE_COLUMN, label_column: str = LABEL_COLUMN,
                  transform=None) -> "DeepFashionDataset":
        """From Hugging Face rows: a ``datasets.Dataset`` or a list of row dicts."""
        labels, images = [], []
        for i in range(len(rows)):
            row = rows[i]
            if image_column not in row:
                raise KeyError(f"row {i} has no {image_column!r} column; columns: {', '.join(map(str, row))}")
            labels.append(_label_of(row, label_column, classes))
            images.append(lambda rows=rows, i=i: decode_image(rows[i][image_column]))
        return cls(images, labels, classes, transform)

    @classmethod
    def from_folder(cls, root: str | Path, classes: Sequence[str] | None = None, *, transform=None,
                    ) -> "DeepFashionDataset":
        """From ``<root>/<category>/<image>``; unreadable files are skipped (see ``.skipped``)."""
        folder = scan_image_folder(root, list(classes) if classes is not None else None)
        dataset = cls([lambda i=i: folder.load(i) for i in range(len(folder))], folder.labels,
                      folder.classes, transform)
        dataset.skipped = folder.skipped
        return dataset


def export_class_folders(rows: Sequence[Mapping[str, Any]], root: str | Path, *,
                         image_column: str = IMAGE_COLUMN, label_column: str = LABEL_COLUMN) -> Path:
    """Write Hugging Face rows as ``<root>/<category>/<index>.jpg`` (the offline layout)."""
    root = Path(root)
    for i in range(len(rows)):
        row = rows[i]
        category = row[label_column] if isinstance(row[label_column], str) else CATEGORIES[int(row[label_column])]
        image = decode_image(row[image_column])
        atomic_write(root / category / f"{i:06d}.jpg", lambda tmp, im=image: im.save(tmp, format="JPEG", quality=95))
    return root
