"""Fail fast, with a useful message, when an online-only model cannot reach its hub.

These machines reach only package registries; a model hub download would otherwise hang or
die deep inside a library. Name resolution runs in a thread so that even a stalled DNS lookup
is bounded by config.ONLINE_CHECK_TIMEOUT_S.
"""
from __future__ import annotations

import os
import socket
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout

import config

OFFLINE_ENV = "CVTASKS_OFFLINE"  # set to 1 to refuse every online-only model at once


class OfflineError(RuntimeError):
    """An online-only model was asked for while its hub is unreachable."""


def _connect(host: str, port: int, timeout: float) -> None:
    with socket.create_connection((host, port), timeout=timeout):
        pass


def host_reachable(host: str, port: int = 443, timeout: float | None = None) -> bool:
    timeout = config.ONLINE_CHECK_TIMEOUT_S if timeout is None else timeout
    pool = ThreadPoolExecutor(max_workers=1)
    try:
        pool.submit(_connect, host, port, timeout).result(timeout=timeout + 0.5)
        return True
    except (OSError, FutureTimeout):
        return False
    finally:
        pool.shutdown(wait=False)  # a stuck lookup thread must not hold the caller


def require_online(model: str, host: str, offline_alternative: str) -> None:
    """Raise OfflineError at once unless ``host`` answers; the message names the alternative."""
    forced = os.environ.get(OFFLINE_ENV, "") not in ("", "0") or os.environ.get("HF_HUB_OFFLINE") == "1"
    if forced or not host_reachable(host):
        why = f"{OFFLINE_ENV}/HF_HUB_OFFLINE is set" if forced else f"{host} is unreachable"
        raise OfflineError(
            f"{model!r} downloads its weights from {host}, but {why}. "
            f"Use the offline encoder {offline_alternative!r} instead "
            f"(offline image encoder: {config.OFFLINE_IMAGE_ENCODER!r}, "
            f"offline text encoder: {config.OFFLINE_TEXT_ENCODER!r})."
        )
