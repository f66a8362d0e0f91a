"""Uploaded bytes -> the classifier's input, with every bad input turned into a clear 4xx.

The model was trained on Fashion-MNIST: 28x28 grey images of a garment, light on a black
background, scaled to [0, 1]. Zalando made those images from shop photos by fitting the longest
side to 28 px, centring, and negating intensities. An upload goes the same way: any mode
(RGB, RGBA, L, P, CMYK, 16-bit) to grey; a light-background photo (the border brighter than
mid-grey) is negated; the longest side fitted to 28 px on a black canvas. A 28x28 image that
already looks like Fashion-MNIST comes out exactly as in training (a test checks this).

Decoded at the size the model needs: a JPEG is decoded straight to grey at the smallest DCT
scale (1/2, 1/4 or 1/8, libjpeg's ``draft`` mode) whose longest side is still at least
``draft_side`` pixels, so a phone photo never becomes a full-size array; the pixel limit is
checked on the header and the byte limit on the request, both before any decoding.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageOps

from cvtasks.images import ImageRejected, decoding_guard, open_checked

SIZE = 28
ALLOWED_FORMATS = {"PNG", "JPEG", "WEBP", "GIF"}


@dataclass
class ImageError(Exception):
    """A client error: HTTP status, a stable machine-readable code, and a message for people."""

    status: int
    code: str
    message: str


_STATUS = {"empty": (400, "empty_file"), "not_an_image": (415, "not_an_image"),
           "too_large": (413, "image_dimensions_too_large"), "corrupt": (400, "corrupt_image")}


def _rejected(err: ImageRejected) -> ImageError:
    status, code = _STATUS[err.kind]
    message = {"empty": "the uploaded file is empty",
               "not_an_image": f"the file is not an image in a supported format ({', '.join(sorted(ALLOWED_FORMATS))})",
               }.get(err.kind, str(err))
    return ImageError(status, code, message)


def _open(data: bytes, max_pixels: int) -> Image.Image:
    try:
        image = open_checked(data, max_pixels)
    except ImageRejected as err:
        raise _rejected(err) from None
    if image.format not in ALLOWED_FORMATS:
        raise ImageError(415, "unsupported_image_type",
                         f"{image.format} images are not supported; send {', '.join(sorted(ALLOWED_FORMATS))}")
    return image


def _to_grey(image: Image.Image) -> np.ndarray:
    """Any mode to a float grey array in [0, 1]; transparency composited onto black."""
    if image.mode in ("I;16", "I;16B", "I;16L", "I"):
        arr = np.asarray(image, dtype=np.float64)
        top = 65535.0 if arr.max() > 255 else 255.0
        return np.clip(arr / top, 0, 1).astype(np.float32)
    if image.mode == "P":
        image = image.convert("RGBA")
    if image.mode in ("RGBA", "LA", "PA"):
        black = Image.new("RGBA", image.size, (0, 0, 0, 255))
        image = Image.alpha_composite(black, image.convert("RGBA"))
    if image.mode != "L":
        image = image.convert("RGB").convert("L")
    return np.asarray(image, dtype=np.float32) / 255.0


def _fit(grey: np.ndarray) -> np.ndarray:
    """Longest side to 28 px (aspect kept), centred on a black 28x28 canvas."""
    h, w = grey.shape
    if (h, w) == (SIZE, SIZE):
        return grey
    scale = SIZE / max(h, w)
    nh, nw = max(1, round(h * scale)), max(1, round(w * scale))
    small = Image.fromarray((grey * 255).round().astype(np.uint8)).resize((nw, nh), Image.LANCZOS)
    canvas = np.zeros((SIZE, SIZE), np.float32)
    top, left = (SIZE - nh) // 2, (SIZE - nw) // 2
    canvas[top:top + nh, left:left + nw] = np.asarray(small, np.float32) / 255.0
    return canvas


def draft_box(size: tuple[int, int], side: int) -> tuple[int, int]:
    """The (width, height) a JPEG may be reduced to while its longest side keeps ``side`` px."""
    w, h = size
    scale = side / max(w, h)
    return max(1, math.ceil(w * scale)), max(1, math.ceil(h * scale))


def decode(data: bytes, max_pixels: int, draft_side: int = 0) -> np.ndarray:
    """Bytes of a PNG/JPEG/WebP/GIF (first frame) -> a (28, 28) float32 array in [0, 1].
    ``draft_side`` > 0: JPEGs decoded at reduced scale, longest side >= it (0: full size)."""
    image = _open(data, max_pixels)
    try:
        with decoding_guard():
            image.seek(0)  # the first frame of an animation
            if draft_side and image.format == "JPEG" and max(image.size) > draft_side:
                image.draft("L", draft_box(image.size, draft_side))
            image = ImageOps.exif_transpose(image)
            image.load()
            grey = _to_grey(image)
    except ImageRejected as err:
        raise _rejected(err) from None
    border = np.concatenate([grey[0], grey[-1], grey[:, 0], grey[:, -1]])
    if border.mean() > 0.5:  # a shop photo on a light background: negate, as Fashion-MNIST did
        grey = 1.0 - grey
    return _fit(grey)
