"""Run the service with uvicorn: ``python -m cvtasks serve [--workers N]``.

Backends: ``onnx`` (the exported FP32 or INT8 model; the default is INT8) or ``torch`` (PyTorch
eager from the training checkpoint: the naive baseline of the load test). uvicorn stops
gracefully on SIGTERM / SIGINT: it stops accepting, finishes the requests in flight (up to
``graceful_shutdown_s``), then the app drains its batch queue.

With ``workers`` > 1, uvicorn starts that many server processes on one socket. Each builds its
app from the settings this process passes in ``SETTINGS_ENV`` (a worker is a fresh interpreter),
and prometheus-client's multiprocess mode keeps every metric in a fresh folder so that /metrics
adds the workers up (cvtasks.serve.app.Metrics).
"""
from __future__ import annotations

import json
import logging
import os
import sys
import tempfile
from pathlib import Path
from typing import Any

import config
from cvtasks.serve.app import MULTIPROC_ENV, create_app

SETTINGS_ENV = "CVTASKS_SERVE_SETTINGS"


def classifier_loader(backend: str, model: Path, threads: int):
    """A function that loads the chosen backend (called at the service's start-up)."""
    if backend == "onnx":
        # each backend imports only what it needs: the ONNX service starts without torch (cold start)
        from cvtasks.serve.backends import OnnxClassifier

        return lambda: OnnxClassifier(model, threads=threads)
    if backend == "torch":
        def load():
            # torch, only for this backend
            from cvtasks.models.fashion_classifier import load_classifier
            from cvtasks.serve.backends import TorchClassifier
            from cvtasks.serve.export import Normalised, model_version

            net, meta = load_classifier(model)
            return TorchClassifier(Normalised(net, meta["mean"], meta["std"]), meta["classes"],
                                   model_version(meta), threads=threads)
        return load
    raise ValueError(f"backend {backend!r}: must be 'onnx' or 'torch'")


def settings_from_env() -> config.ServeConfig:
    """The settings the parent process chose (``SETTINGS_ENV``: quick flag and overrides)."""
    chosen: dict[str, Any] = json.loads(os.environ.get(SETTINGS_ENV, "{}"))
    quick = chosen.pop("quick", False)
    if "model_path" in chosen:
        chosen["model_path"] = Path(chosen["model_path"])
    return config.get("serve", quick=quick, **chosen)


def app_from_env():
    """uvicorn's app factory in every worker process."""
    logging.basicConfig(level=logging.INFO, format="%(message)s", stream=sys.stdout)
    settings = settings_from_env()
    return create_app(classifier_loader(settings.backend, settings.model_path, settings.threads), settings)


def serve(settings: config.ServeConfig, overrides: dict[str, Any] | None = None) -> None:
    """Serve until SIGTERM / SIGINT; ``overrides`` are what the worker processes rebuild the
    settings from (the same ones ``settings`` was made with)."""
    import uvicorn

    run = {"host": settings.host, "port": settings.port, "log_config": None, "access_log": False,
           "timeout_graceful_shutdown": settings.graceful_shutdown_s}
    if settings.workers == 1:
        logging.basicConfig(level=logging.INFO, format="%(message)s", stream=sys.stdout)
        app = create_app(classifier_loader(settings.backend, settings.model_path, settings.threads), settings)
        uvicorn.run(app, **run)
        return
    chosen = {k: str(v) if isinstance(v, Path) else v for k, v in (overrides or {}).items()}
    os.environ[SETTINGS_ENV] = json.dumps({**chosen, "quick": settings.quick})
    with tempfile.TemporaryDirectory(prefix="cvtasks-metrics-") as folder:
        os.environ[MULTIPROC_ENV] = folder   # set before any worker imports prometheus_client
        uvicorn.run("cvtasks.serve.server:app_from_env", factory=True, workers=settings.workers, **run)
