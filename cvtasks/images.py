"""The one guard every image file or upload passes before it is decoded.

PIL decodes lazily: ``Image.open`` reads only the header, so the pixel count can be checked
before a decompression bomb (a small file that expands to gigabytes) is unpacked. PIL's own
bomb warning is turned into an error too. Light on purpose: the service imports it, and the
service carries no PyTorch.
"""
from __future__ import annotations

import io
import warnings
from pathlib import Path

from PIL import Image, UnidentifiedImageError

MAX_PIXELS = 40_000_000   # default limit on width x height for files read from disk


class ImageRejected(ValueError):
    """An image that may not be decoded: ``kind`` is empty, not_an_image, too_large or corrupt."""

    def __init__(self, kind: str, message: str):
        super().__init__(message)
        self.kind = kind


def open_checked(source: bytes | str | Path, max_pixels: int = MAX_PIXELS) -> Image.Image:
    """Open an image (bytes or a path) whose header declares at most ``max_pixels`` pixels.
    Nothing is decoded yet; decode inside ``decoding_guard()``."""
    if isinstance(source, bytes) and not source:
        raise ImageRejected("empty", "the file is empty")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)  # our own limit decides
            image = Image.open(io.BytesIO(source) if isinstance(source, bytes) else source)
    except UnidentifiedImageError:
        raise ImageRejected("not_an_image", "the file is not an image in a format PIL reads") from None
    except Image.DecompressionBombError as err:   # PIL's own, far larger limit
        raise ImageRejected("too_large", str(err)) from None
    except (OSError, SyntaxError, ValueError) as err:
        raise ImageRejected("corrupt", f"the image could not be read: {err}") from None
    width, height = image.size
    if width * height > max_pixels:   # checked on the header, before any pixel is decoded
        image.close()
        raise ImageRejected("too_large", f"{width}x{height} pixels exceeds the limit of {max_pixels} pixels")
    return image


class decoding_guard(warnings.catch_warnings):
    """``with decoding_guard(): image.load()``: a bomb warning or a broken file raises
    ImageRejected("corrupt" or "too_large") instead of a mix of PIL's own exceptions."""

    def __enter__(self):
        super().__enter__()
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        return self

    def __exit__(self, exc_type, exc, tb):
        super().__exit__(exc_type, exc, tb)
        if exc_type is None or isinstance(exc, ImageRejected):
            return False
        if issubclass(exc_type, (Image.DecompressionBombError, Image.DecompressionBombWarning)):
            raise ImageRejected("too_large", str(exc)) from exc
        if issubclass(exc_type, (OSError, SyntaxError, ValueError, EOFError)):
            raise ImageRejected("corrupt", f"the image could not be decoded: {exc}") from exc
        return False
