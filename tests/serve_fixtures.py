"""Fixtures shared by the service tests: a small seeded CNN and synthetic garment images."""
import io

import numpy as np
import torch
from PIL import Image

CLASSES = ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"]


def tiny_net():
    torch.manual_seed(0)
    return torch.nn.Sequential(torch.nn.Conv2d(1, 8, 3, padding=1), torch.nn.ReLU(), torch.nn.MaxPool2d(2),
                               torch.nn.Flatten(), torch.nn.Linear(8 * 14 * 14, 10))


def encode(array, fmt="PNG", mode=None, **kw):
    image = Image.fromarray(array)
    if mode:
        image = image.convert(mode)
    buf = io.BytesIO()
    image.save(buf, format=fmt, **kw)
    return buf.getvalue()


def garment(size=28):
    """A light shape on black, like a Fashion-MNIST image."""
    a = np.zeros((size, size), np.uint8)
    a[size // 5: -size // 5, size // 4: -size // 4] = 200
    return a
