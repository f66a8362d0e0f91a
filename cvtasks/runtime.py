"""Seeds and device choice: the two things every training entry point does first."""
from __future__ import annotations

import os
import random

import numpy as np
import torch


def seed_everything(seed: int) -> None:
    """Seed Python, NumPy and torch (CPU and CUDA) so that CPU runs repeat exactly."""
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
    torch.cuda.manual_seed_all(seed)
    os.environ.setdefault("PYTHONHASHSEED", str(seed))


def pick_device(device: str | torch.device | None = None) -> torch.device:
    """The device asked for, else CUDA when there is one, else the CPU."""
    if device is not None:
        chosen = torch.device(device)
        if chosen.type == "cuda" and not torch.cuda.is_available():
            raise RuntimeError(f"device {device!r} was asked for but CUDA is not available")
        return chosen
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")
