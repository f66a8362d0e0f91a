"""Test-wide settings: no W&B traffic, a headless plot backend, GPU tests only with CUDA."""
import os

# Set before anything imports wandb or matplotlib; notebook kernels inherit them too.
os.environ["CVTASKS_WANDB"] = "disabled"
os.environ.setdefault("MPLBACKEND", "Agg")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import pytest  # noqa: E402


def pytest_collection_modifyitems(config, items):
    import torch

    if torch.cuda.is_available():
        return
    skip = pytest.mark.skip(reason="needs CUDA")
    for item in items:
        if "gpu" in item.keywords:
            item.add_marker(skip)
