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


def exported_tiny_model(folder):
    """The untrained tiny CNN exported to INT8 ONNX as the service loads it (for service
    plumbing tests, where what it predicts does not matter)."""
    from cvtasks.serve.export import export_onnx, quantize_int8

    rng = np.random.default_rng(0)
    meta = {"classes": CLASSES, "mean": 0.29, "std": 0.35, "training_key": "tiny"}
    fp32 = export_onnx(tiny_net(), meta, folder / "model.onnx")
    return quantize_int8(fp32, folder / "model.int8.onnx", rng.random((64, 28, 28), dtype=np.float32))


def dashboard_queries() -> list[str]:
    """Every PromQL query of the Grafana dashboard."""
    import json

    import config

    dash = json.loads((config.ROOT / "docker" / "grafana" / "dashboards" / "classifier.json").read_text())
    return [t["expr"] for panel in dash["panels"] for t in panel["targets"]]
