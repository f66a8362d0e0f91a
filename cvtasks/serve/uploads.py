"""What the load tests upload: Fashion-MNIST items, or realistic product photos.

A product photo here is a Fashion-MNIST test item rendered as a shop would show it: a colour
garment on a light, slightly tinted background, 224 to 1024 px on its longest side, saved as
JPEG (most) or PNG. These are generated from the 28 x 28 items (no photo set is reachable
offline); they cost the server what real uploads cost: decoding megapixel JPEGs and PNGs and
scaling them down. A share of bad inputs (not an image, a truncated JPEG, an empty file) must
come back as 4xx, never 5xx.
"""
from __future__ import annotations

import io
from dataclasses import dataclass

import numpy as np
from PIL import Image


@dataclass(frozen=True)
class Upload:
    data: bytes
    filename: str
    content_type: str
    good: bool          # a valid image (expects 200); a bad one expects a 4xx


def _encode(image: Image.Image, fmt: str, **options) -> bytes:
    buf = io.BytesIO()
    image.save(buf, format=fmt, **options)
    return buf.getvalue()


def small_png(item: np.ndarray) -> Upload:
    """A 28 x 28 Fashion-MNIST item as PNG: the cheapest upload."""
    return Upload(_encode(Image.fromarray(item), "PNG"), "item.png", "image/png", True)


def product_photo(item: np.ndarray, rng: np.random.Generator, sizes: tuple[int, int], jpeg_share: float) -> Upload:
    """One 28 x 28 item as a colour photo on a light background (see the module docstring)."""
    side = int(rng.integers(sizes[0], sizes[1] + 1))
    aspect = rng.uniform(0.75, 1.33)
    w, h = (side, round(side / aspect)) if aspect >= 1 else (round(side * aspect), side)
    background = rng.uniform(225, 250) + rng.uniform(-6, 6, 3)
    garment = rng.uniform(20, 200, 3)
    fit = int(min(w, h) * rng.uniform(0.7, 0.9))
    alpha = np.asarray(Image.fromarray(item).resize((fit, fit), Image.BICUBIC), np.float32)[..., None] / 255.0
    canvas = np.broadcast_to(background, (h, w, 3)).astype(np.float32).copy()
    top, left = (h - fit) // 2, (w - fit) // 2
    patch = canvas[top:top + fit, left:left + fit]
    canvas[top:top + fit, left:left + fit] = patch * (1 - alpha) + garment * alpha
    canvas += rng.normal(0, 2.0, canvas.shape)              # sensor noise: JPEG must work for it
    image = Image.fromarray(np.clip(canvas, 0, 255).astype(np.uint8))
    if rng.random() < jpeg_share:
        return Upload(_encode(image, "JPEG", quality=int(rng.integers(75, 95))), "photo.jpg", "image/jpeg", True)
    return Upload(_encode(image, "PNG"), "photo.png", "image/png", True)


def bad_upload(kind: int, photo: bytes) -> Upload:
    """Bad inputs the service must refuse with a 4xx: text, a truncated JPEG, an empty file."""
    if kind % 3 == 0:
        return Upload(b"this is not an image\n" * 20, "notes.txt", "text/plain", False)
    if kind % 3 == 1:
        return Upload(photo[: len(photo) // 3], "cut.jpg", "image/jpeg", False)
    return Upload(b"", "empty.png", "image/png", False)


def product_uploads(items: np.ndarray, n: int, seed: int, sizes: tuple[int, int],
                    jpeg_share: float, bad_share: float) -> list[Upload]:
    """``n`` uploads, ``bad_share`` of them bad, in a seeded shuffled order."""
    rng = np.random.default_rng(seed)
    photos = [product_photo(items[i % len(items)], rng, sizes, jpeg_share) for i in range(n)]
    n_bad = round(n * bad_share)
    jpegs = [p.data for p in photos if p.content_type == "image/jpeg"] or [photos[0].data]
    uploads = photos[: n - n_bad] + [bad_upload(k, jpegs[k % len(jpegs)]) for k in range(n_bad)]
    return [uploads[i] for i in rng.permutation(len(uploads))]


def kind_uploads(items: np.ndarray, kind: tuple[str, int, int, str], n: int, seed: int) -> list[Upload]:
    """``n`` uploads of one kind (ServeConfig.upload_kinds): the items themselves as PNG when the
    kind's longest side is 28 px, else product photos of that size range and format."""
    _, low, high, fmt = kind
    if high <= 28:
        return [small_png(item) for item in items[:n]]
    rng = np.random.default_rng(seed)
    return [product_photo(items[i % len(items)], rng, (low, high), 1.0 if fmt == "JPEG" else 0.0) for i in range(n)]
