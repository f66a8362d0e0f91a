"""ONNX parity and INT8 accuracy on a model trained on real Fashion-MNIST, and the service as a
real uvicorn process on loopback: ready, predict, /metrics, graceful shutdown."""
import json

import numpy as np
import pytest
import torch
from prometheus_client.parser import text_string_to_metric_families
from torch.utils.data import DataLoader, TensorDataset

import config
from cvtasks.fashion.data import prepare_data
from cvtasks.serve.export import (
    export_onnx,
    onnx_probs,
    parity,
    quantize_int8,
    torch_probs,
)
from cvtasks.serve.loadtest import start_server, stop_server
from cvtasks.train import FitOptions, fit
from tests.serve_fixtures import encode, garment, tiny_net


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A small CNN trained for two epochs on 6,000 real Fashion-MNIST images, exported."""
    data = prepare_data(config.get("fashion", quick=True))
    mean, std = data.mean_std
    x = torch.from_numpy((data.x_train.astype(np.float32) / 255 - mean) / std)[:, None]
    model = tiny_net()
    fit(model, DataLoader(TensorDataset(x, torch.from_numpy(data.y_train)), batch_size=64, shuffle=True),
        optimizer=torch.optim.Adam(model.parameters(), 2e-3), loss_fn=torch.nn.functional.cross_entropy,
        options=FitOptions(epochs=2, seed=0), device="cpu")
    meta = {"classes": list(data.classes), "mean": mean, "std": std, "training_key": "test"}
    folder = tmp_path_factory.mktemp("export")
    fp32 = export_onnx(model, meta, folder / "model.onnx")
    int8 = quantize_int8(fp32, folder / "model.int8.onnx", data.x_train[:500].astype(np.float32) / 255)
    return model, meta, data, fp32, int8


@pytest.mark.slow
def test_onnx_matches_pytorch_on_the_test_set(trained):
    model, meta, data, fp32, _ = trained
    x = data.x_test.astype(np.float32) / 255
    result = parity(torch_probs(model, meta, x), onnx_probs(fp32, x))
    assert result["max_abs_diff"] <= 1e-4 and result["top1_agreement"] >= 0.999


@pytest.mark.slow
def test_int8_keeps_accuracy_and_shrinks(trained):
    model, meta, data, fp32, int8 = trained
    x = data.x_test.astype(np.float32) / 255
    acc_fp32 = (onnx_probs(fp32, x).argmax(1) == data.y_test).mean()
    acc_int8 = (onnx_probs(int8, x).argmax(1) == data.y_test).mean()
    assert acc_fp32 > 0.8                      # the model really learned
    assert acc_fp32 - acc_int8 <= 0.005         # at most half a point lost on 10k test images
    assert int8.stat().st_size < 0.5 * fp32.stat().st_size


@pytest.mark.slow
def test_real_uvicorn_process(trained, tmp_path):
    import urllib.request

    server = start_server("onnx", trained[3], tmp_path / "server.log", max_batch=8, threads=1)
    try:
        body, boundary = _multipart(encode(garment()))
        request = urllib.request.Request(f"{server.url}/predict", data=body, method="POST",
                                         headers={"Content-Type": f"multipart/form-data; boundary={boundary}"})
        with urllib.request.urlopen(request, timeout=10) as r:
            prediction = json.loads(r.read())
        assert prediction["predictions"][0]["class"] in trained[2].classes
        with urllib.request.urlopen(f"{server.url}/metrics", timeout=10) as r:
            families = {f.name: f for f in text_string_to_metric_families(r.read().decode())}
        ready = [s.value for s in families["model_ready"].samples]
        assert ready == [1.0]
        assert any(s.labels.get("route") == "/predict" and s.labels.get("status") == "200"
                   for s in families["http_requests"].samples)
    finally:
        graceful = stop_server(server)
    assert graceful, server.log.read_text()[-2000:]
    lines = [json.loads(line) for line in server.log.read_text().splitlines() if line.startswith("{")]
    logged = [line for line in lines if line.get("event") == "request" and line["route"] == "/predict"]
    assert logged and {"request_id", "status", "latency_ms"} <= set(logged[0])


def _multipart(png: bytes):
    boundary = "cvtasks-test-boundary"
    body = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"x.png\"\r\n"
            f"Content-Type: image/png\r\n\r\n").encode() + png + f"\r\n--{boundary}--\r\n".encode()
    return body, boundary
