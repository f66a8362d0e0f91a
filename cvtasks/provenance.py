"""Provenance stamps: which commit made a file and which bytes it holds. A leaf module (no
project imports but config) so that training, the service and tracking all stamp alike."""
from __future__ import annotations

import datetime
import hashlib
import platform
import subprocess
from functools import lru_cache
from pathlib import Path

import torch

import config


# What a run writes itself (executed notebooks, metrics and bench files) does not make its code
# differ from the commit: `make reports` rewrites them one notebook after another.
RUN_OUTPUTS = (":(exclude)*.ipynb", ":(exclude)reports/")


@lru_cache(maxsize=1)
def git_commit() -> str:
    """The checkout's short commit, with ``-dirty`` when tracked files other than run outputs
    (RUN_OUTPUTS) differ from it; ``unknown`` outside a git checkout."""
    try:
        sha = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=config.ROOT, capture_output=True,
                             text=True, timeout=10, check=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no", "--", ".", *RUN_OUTPUTS],
                               cwd=config.ROOT, capture_output=True, text=True, timeout=10, check=True).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return f"{sha}-dirty" if dirty else sha


def file_sha256(path: str | Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def utc_now() -> str:
    return datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def cpu_name() -> str:
    """The CPU's model name and the vector instructions torch uses on it (fp32 results differ
    slightly between AVX2 and AVX-512 kernels, and so do the seconds)."""
    name = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                name = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return f"{name} ({torch.backends.cpu.get_cpu_capability()})"


def device_name(device: torch.device) -> str:
    """The accelerator's name for a CUDA device, else the CPU's."""
    if device.type == "cuda":
        return f"{torch.cuda.get_device_name(device)} (CUDA)"
    return cpu_name()


def on_gpu(name: str) -> bool:
    """Whether a ``device_name`` stamp names a CUDA device."""
    return "(CUDA)" in name
