"""Run the service with uvicorn: ``python -m cvtasks serve``.

Backends: ``onnx`` (the exported FP32 or INT8 model; the default is INT8) or ``torch`` (PyTorch
eager from the training checkpoint: the naive baseline of the load test). uvicorn stops
gracefully on SIGTERM / SIGINT: it stops accepting, finishes the requests in flight (up to
``graceful_shutdown_s``), then the app drains its batch queue.
"""
from __future__ import annotations

import logging
import sys
from pathlib import Path

import config
from cvtasks.serve.app import create_app


def classifier_loader(backend: str, model: Path, threads: int):
    """A function that loads the chosen backend (called at the service's start-up)."""
    if backend == "onnx":
        from cvtasks.serve.backends import OnnxClassifier

        return lambda: OnnxClassifier(model, threads=threads)
    if backend == "torch":
        def load():
            from cvtasks.fashion.training import load_classifier
            from cvtasks.serve.backends import TorchClassifier
            from cvtasks.serve.export import Normalised, model_version

            net, meta = load_classifier(model)
            return TorchClassifier(Normalised(net, meta["mean"], meta["std"]), meta["classes"],
                                   model_version(meta), threads=threads)
        return load
    raise ValueError(f"backend {backend!r}: must be 'onnx' or 'torch'")


def serve(backend: str, model: Path, settings: config.ServeConfig) -> None:
    import uvicorn

    logging.basicConfig(level=logging.INFO, format="%(message)s", stream=sys.stdout)
    app = create_app(classifier_loader(backend, model, settings.threads), settings)
    uvicorn.run(app, host=settings.host, port=settings.port, log_config=None, access_log=False,
                timeout_graceful_shutdown=settings.graceful_shutdown_s, workers=1)
