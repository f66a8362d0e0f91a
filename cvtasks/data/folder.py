"""A folder of images laid out by class: ``<root>/<class>/<image>``.

Used for users' own photos (chandeliers by brand, normal/spill wells, DeepFashion class
folders). Files that are not readable images are skipped, counted and reported with the
reason, never crash the run.
"""
from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from PIL import Image

from cvtasks.images import ImageRejected, decoding_guard, open_checked

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".webp", ".bmp", ".gif", ".tif", ".tiff"}


@dataclass
class ImageFolder:
    """The readable images of a class-folder tree, their labels and what was skipped."""

    root: Path
    classes: list[str]
    paths: list[Path] = field(default_factory=list)
    labels: list[int] = field(default_factory=list)
    skipped: list[tuple[Path, str]] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.paths)

    def counts(self) -> dict[str, int]:
        counted = Counter(self.labels)
        return {name: counted.get(i, 0) for i, name in enumerate(self.classes)}

    def load(self, index: int, size: int | None = None) -> Image.Image:
        """Image ``index`` as RGB, optionally resized to ``size`` x ``size``."""
        with Image.open(self.paths[index]) as im:
            im = im.convert("RGB")
        return im.resize((size, size), Image.BICUBIC) if size else im

    def summary(self) -> str:
        reasons = Counter(reason.split(":")[0] for _, reason in self.skipped)
        skipped = ", ".join(f"{n} {r}" for r, n in reasons.items()) or "none"
        return f"{len(self)} images in {len(self.classes)} classes from {self.root}; skipped: {skipped}"


def _check(path: Path) -> str | None:
    """None when ``path`` is a readable image, else why not."""
    if path.suffix.lower() not in IMAGE_SUFFIXES:
        return f"not an image file: suffix {path.suffix or '(none)'}"
    try:
        with decoding_guard(), open_checked(path) as im:
            im.verify()  # reads the whole file: catches truncation and bad data
    except ImageRejected as err:
        return f"unreadable: {err.kind}: {err}"
    return None


def scan_image_folder(root: str | Path, classes: list[str] | None = None) -> ImageFolder:
    """Scan ``root/<class>/*``; ``classes`` fixes the label order (default: sorted folder names)."""
    root = Path(root)
    if not root.is_dir():
        raise FileNotFoundError(f"image folder {root} does not exist; expected {root}/<class>/<image>")
    found = sorted(p.name for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))
    classes = list(classes) if classes is not None else found
    missing = set(classes) - set(found)
    if missing:
        raise FileNotFoundError(f"{root}: no folder for class(es) {', '.join(sorted(missing))}")
    if not classes:
        raise FileNotFoundError(f"{root} has no class folders; expected {root}/<class>/<image>")
    folder = ImageFolder(root, classes)
    for label, name in enumerate(classes):
        for path in sorted(p for p in (root / name).rglob("*") if p.is_file() and not p.name.startswith(".")):
            reason = _check(path)
            if reason is None:
                folder.paths.append(path)
                folder.labels.append(label)
            else:
                folder.skipped.append((path, reason))
    return folder
