"""The feature cache: arrays computed once, stored under data/cache, keyed by what made them.

A cache file is named by a hash of its key (encoder + data + preprocessing, say) and also
stores the key itself; a file that cannot be read, or whose key differs, is rebuilt rather than
trusted. Writes are atomic (cvtasks.io.atomic_write).
"""
from __future__ import annotations

import hashlib
import json
import logging
import zipfile
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, is_dataclass
from pathlib import Path
from typing import Any

import numpy as np

import config
from cvtasks.io import atomic_write

log = logging.getLogger(__name__)
_KEY_FIELD = "__cache_key__"


def _canonical(value: Any) -> Any:
    if is_dataclass(value) and not isinstance(value, type):
        return _canonical(asdict(value))
    if isinstance(value, Mapping):
        return {str(k): _canonical(v) for k, v in sorted(value.items(), key=lambda kv: str(kv[0]))}
    if isinstance(value, (list, tuple)):
        return [_canonical(v) for v in value]
    if isinstance(value, (Path, np.generic)):
        return str(value) if isinstance(value, Path) else value.item()
    return value


def fingerprint(*parts: Any) -> str:
    """A short stable hash of JSON-able parts (dataclasses, paths and tuples allowed)."""
    text = json.dumps(_canonical(list(parts)), sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def cached_arrays(name: str, key: Mapping[str, Any], compute: Callable[[], Mapping[str, np.ndarray]],
                  cache_dir: str | Path | None = None) -> dict[str, np.ndarray]:
    """Arrays from ``<cache_dir>/<name>-<hash(key)>.npz``, computed and stored on a miss."""
    cache_dir = Path(cache_dir) if cache_dir is not None else config.CACHE_DIR
    key_text = json.dumps(_canonical(dict(key)), sort_keys=True, default=str)
    path = cache_dir / f"{name}-{fingerprint(key_text)}.npz"
    if path.exists():
        try:
            with np.load(path, allow_pickle=False) as data:
                if str(data[_KEY_FIELD]) == key_text:
                    return {k: data[k] for k in data.files if k != _KEY_FIELD}
            log.warning("cache %s holds another key; rebuilding", path)
        except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile) as err:
            log.warning("cache %s is unreadable (%s); rebuilding", path, err)
    arrays = {k: np.asarray(v) for k, v in compute().items()}
    if _KEY_FIELD in arrays:
        raise ValueError(f"{_KEY_FIELD!r} is reserved")

    def write(tmp: Path) -> None:
        with open(tmp, "wb") as fh:
            np.savez(fh, **arrays, **{_KEY_FIELD: np.array(key_text)})

    atomic_write(path, write)
    return arrays


def image_embeddings(encoder: Any, images: Callable[[], Sequence[Any]], data_key: Any, *,
                     device: Any = None, cache_dir: str | Path | None = None) -> np.ndarray:
    """Penultimate embeddings of a dataset's images, cached by encoder + data + preprocessing.

    ``images`` is called only on a cache miss, so loading or rendering them is skipped too.
    """
    key = {"encoder": encoder.name, "data": data_key, "preprocessing": encoder.preprocessing}
    compute = lambda: {"embeddings": encoder.embed_images(images(), device=device)}  # noqa: E731
    return cached_arrays("image-emb", key, compute, cache_dir)["embeddings"]


def text_embeddings(encoder: Any, texts: Sequence[str], *, cache_dir: str | Path | None = None) -> np.ndarray:
    """Unit-length sentence embeddings, cached by encoder and the texts themselves."""
    key = {"encoder": encoder.name, "texts": hashlib.sha256("\x00".join(texts).encode()).hexdigest(),
           "n": len(texts)}
    compute = lambda: {"embeddings": encoder.encode(list(texts))}  # noqa: E731
    return cached_arrays("text-emb", key, compute, cache_dir)["embeddings"]
