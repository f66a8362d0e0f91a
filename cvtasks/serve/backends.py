"""Classifier backends with one interface: ``predict(x) -> probabilities``.

``x`` is a float32 batch (n, 1, 28, 28) in [0, 1]; normalisation and softmax are inside the
model (see export.Normalised), so every backend takes the same input as the decoder gives.
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import onnxruntime as ort


class OnnxClassifier:
    """An exported model (FP32 or INT8) run by onnxruntime on ``threads`` CPU threads."""

    def __init__(self, path: str | Path, threads: int = 1):
        path = Path(path)
        if not path.exists():
            raise FileNotFoundError(f"no model at {path}; export one with `python -m cvtasks export`")
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        providers = [p for p in ("CUDAExecutionProvider", "CPUExecutionProvider") if p in ort.get_available_providers()]
        self.session = ort.InferenceSession(str(path), options, providers=providers)
        meta = self.session.get_modelmeta().custom_metadata_map
        self.classes: list[str] = json.loads(meta["classes"])
        self.version: str = meta.get("version", "unknown")
        self.name = f"onnx:{path.name}"
        self._input = self.session.get_inputs()[0].name

    def predict(self, x: np.ndarray) -> np.ndarray:
        return self.session.run(None, {self._input: np.ascontiguousarray(x, dtype=np.float32)})[0]


class TorchClassifier:
    """PyTorch eager: the naive baseline the service is compared with."""

    def __init__(self, model, classes: list[str], version: str, threads: int | None = None):
        import torch  # only this backend needs it: the ONNX service starts without torch

        self._torch = torch
        if threads:
            torch.set_num_threads(threads)
        self.model = model.eval()
        self.classes = list(classes)
        self.version = version
        self.name = "torch-eager"

    def predict(self, x: np.ndarray) -> np.ndarray:
        with self._torch.no_grad():
            return self.model(self._torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32))).numpy()
