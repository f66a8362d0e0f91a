"""The service: every endpoint, every bad input (a JSON 4xx, and the server keeps serving),
preprocessing identical to training, micro-batching, and Prometheus metrics.

The model here is a small seeded CNN exported to ONNX (the service is model-agnostic); the
trained Fashion model's parity and INT8 accuracy are tested in test_serve_export.py.
"""
import asyncio
import io
import struct
import zlib

import numpy as np
import pytest
from fastapi.testclient import TestClient
from PIL import Image
from prometheus_client.parser import text_string_to_metric_families

import config
from cvtasks.serve.app import RequestMiddleware, create_app
from cvtasks.serve.backends import OnnxClassifier
from cvtasks.serve.batching import MicroBatcher
from cvtasks.serve.export import export_onnx
from cvtasks.serve.imaging import decode
from tests.serve_fixtures import CLASSES, encode, garment, tiny_net


@pytest.fixture(scope="module")
def onnx_model(tmp_path_factory):
    path = tmp_path_factory.mktemp("model") / "model.onnx"
    return export_onnx(tiny_net(), {"classes": CLASSES, "mean": 0.286, "std": 0.353, "training_key": "t"}, path)


def settings(**overrides):
    return config.get("serve", quick=False, **overrides)


@pytest.fixture(scope="module")
def client(onnx_model):
    app = create_app(lambda: OnnxClassifier(onnx_model), settings(max_upload_bytes=200_000, max_files_per_batch=4))
    with TestClient(app) as c:
        yield c


def png_with_declared_size(width, height):
    """A PNG whose header declares width x height but carries almost no data (a bomb's shape)."""
    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)
    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(b"\x00" * 64)) + chunk(b"IEND", b"")


def post(client, data, name="x.png", kind="image/png", field="file"):
    return client.post("/predict", files={field: (name, data, kind)})


# --- good requests ----------------------------------------------------------------------
def test_predict_returns_top_k_version_and_time(client):
    r = post(client, encode(garment()))
    assert r.status_code == 200 and r.headers["x-request-id"]
    body = r.json()
    assert len(body["predictions"]) == config.ServeConfig().top_k
    probs = [p["probability"] for p in body["predictions"]]
    assert probs == sorted(probs, reverse=True) and all(0 <= p <= 1 for p in probs)
    assert {p["class"] for p in body["predictions"]} <= set(CLASSES)
    assert len(body["model_version"]) == 12 and body["inference_ms"] > 0


@pytest.mark.parametrize("fmt, mode, kind", [
    ("PNG", "RGB", "image/png"), ("PNG", "RGBA", "image/png"), ("PNG", "L", "image/png"),
    ("PNG", "P", "image/png"), ("JPEG", "RGB", "image/jpeg"), ("JPEG", "CMYK", "image/jpeg"),
    ("WEBP", "RGB", "image/webp"), ("GIF", "P", "image/gif"),
])
def test_formats_and_modes(client, fmt, mode, kind):
    big = np.dstack([garment(300)] * 3)
    assert post(client, encode(big, fmt, mode), f"x.{fmt.lower()}", kind).status_code == 200


def test_sixteen_bit_and_animated_gif(client):
    deep = Image.fromarray(garment(60).astype(np.uint16) * 256)  # 16-bit grey, mode I;16
    buf = io.BytesIO()
    deep.save(buf, format="PNG")
    assert deep.mode.startswith("I") and post(client, buf.getvalue()).status_code == 200
    frames = [Image.fromarray(garment(40)), Image.fromarray(255 - garment(40))]
    buf = io.BytesIO()
    frames[0].save(buf, format="GIF", save_all=True, append_images=frames[1:])
    assert post(client, buf.getvalue(), "a.gif", "image/gif").status_code == 200


def test_batch_endpoint(client):
    files = [("files", (f"{i}.png", encode(garment()), "image/png")) for i in range(3)]
    r = client.post("/predict/batch", files=files)
    assert r.status_code == 200
    assert [x["file"] for x in r.json()["results"]] == ["0.png", "1.png", "2.png"]


def test_health_docs_and_metrics(client):
    assert client.get("/health/live").json() == {"status": "live"}
    ready = client.get("/health/ready")
    assert ready.status_code == 200 and ready.json()["status"] == "ready"
    assert client.get("/docs").status_code == 200
    assert "/predict/batch" in client.get("/openapi.json").json()["paths"]
    post(client, encode(garment()))
    families = {f.name: f for f in text_string_to_metric_families(client.get("/metrics").text)}
    assert {"http_requests", "http_request_duration_seconds", "http_requests_in_flight", "model_inference_seconds",
            "model_batch_size", "model_info", "model_ready"} <= set(families)
    ok = [s for s in families["http_requests"].samples
          if s.labels.get("route") == "/predict" and s.labels.get("status") == "200" and s.name.endswith("_total")]
    assert ok and ok[0].value >= 1
    buckets = {s.labels["le"] for s in families["http_request_duration_seconds"].samples if "le" in s.labels}
    assert {"0.05", "0.1", "0.2", "0.3"} <= buckets
    (info,) = families["model_info"].samples          # a gauge of 1 labelled with the served model
    assert info.value == 1 and info.labels["version"] == client.get("/health/ready").json()["version"]
    assert {"service_memory_bytes", "service_cpu_seconds_total", "service_cpu_cores", "service_workers_ready"} <= set(
        families)
    assert families["service_memory_bytes"].samples[0].value > 10 * 2**20   # a live process's resident memory


# --- bad input: a clear JSON 4xx, never a 5xx, and the server keeps serving ----------------
@pytest.mark.parametrize("case, expected_status, code", [
    ("empty body", 422, "invalid_request"),
    ("wrong field name", 422, "invalid_request"),
    ("empty file", 400, "empty_file"),
    ("not an image", 415, "not_an_image"),
    ("truncated image", 400, "corrupt_image"),
    ("unsupported type", 415, "unsupported_image_type"),
    ("text content type", 415, "unsupported_media_type"),
    ("decompression bomb", 413, "image_dimensions_too_large"),
    ("over the size limit", 413, "payload_too_large"),
])
def test_bad_input_gets_a_clear_4xx(client, case, expected_status, code):
    png = encode(garment(200))
    bmp = encode(garment(), "BMP")
    r = {
        "empty body": lambda: client.post("/predict"),
        "wrong field name": lambda: post(client, png, field="image"),
        "empty file": lambda: post(client, b""),
        "not an image": lambda: post(client, b"%PDF-1.4 this is no picture"),
        "truncated image": lambda: post(client, png[: len(png) // 2]),
        "unsupported type": lambda: post(client, bmp, "x.bmp", "image/bmp"),
        "text content type": lambda: post(client, png, "x.txt", "text/plain"),
        "decompression bomb": lambda: post(client, png_with_declared_size(100_000, 100_000)),
        "over the size limit": lambda: post(client, np.random.default_rng(0).bytes(300_000)),
    }[case]()
    assert r.status_code == expected_status, r.text
    assert r.json()["error"] == code and r.json()["detail"]
    assert post(client, encode(garment())).status_code == 200  # still serving


def test_too_many_files_in_a_batch(client):
    files = [("files", (f"{i}.png", encode(garment()), "image/png")) for i in range(5)]
    r = client.post("/predict/batch", files=files)
    assert r.status_code == 413 and r.json()["error"] == "too_many_files"


def test_a_bad_file_in_a_batch_is_named(client):
    files = [("files", ("good.png", encode(garment()), "image/png")), ("files", ("bad.png", b"junk", "image/png"))]
    r = client.post("/predict/batch", files=files)
    assert r.status_code == 415 and "file 1 (bad.png)" in r.json()["detail"]


def test_body_limit_stops_reading_early():
    """Without a Content-Length, the middleware stops reading once the limit is passed."""
    reads = []
    chunks = [{"type": "http.request", "body": b"x" * 1000, "more_body": True} for _ in range(20)]

    async def receive():
        reads.append(1)
        return chunks.pop(0)

    async def app(scope, receive, send):  # an app that reads the whole body
        while (await receive())["type"] == "http.request":
            pass
        await send({"type": "http.response.start", "status": 400, "headers": []})
        await send({"type": "http.response.body", "body": b""})

    sent = []

    async def send(message):
        sent.append(message)

    from cvtasks.serve.app import Metrics
    middleware = RequestMiddleware(app, Metrics(), max_body=2500)
    scope = {"type": "http", "method": "POST", "path": "/predict", "headers": []}
    asyncio.run(middleware(scope, receive, send))
    assert len(reads) == 3
    assert sent[0]["status"] == 413 and b"payload_too_large" in sent[1]["body"]


# --- preprocessing ----------------------------------------------------------------------
def test_fashion_mnist_like_input_is_unchanged():
    image = np.random.default_rng(1).integers(0, 256, (28, 28)).astype(np.uint8)
    image[0, :] = image[-1, :] = image[:, 0] = image[:, -1] = 0  # black border, as in the dataset
    np.testing.assert_array_equal(decode(encode(image), 10**6), image.astype(np.float32) / 255)


def test_light_background_photo_is_negated_and_fitted():
    photo = np.full((90, 60), 255, np.uint8)
    photo[20:70, 15:45] = 40                     # a dark garment on a white background
    x = decode(encode(photo), 10**6)
    assert x.shape == (28, 28) and x[0, 0] == 0.0 and x[14, 14] > 0.7
    assert (x[:, :4] == 0).all()                 # fitted by height, centred: black side bands


# --- micro-batching ---------------------------------------------------------------------
@pytest.mark.parametrize("max_batch, expect_batched", [(16, True), (1, False)])
def test_micro_batching_groups_concurrent_requests(max_batch, expect_batched):
    calls = []

    def predict(x):
        calls.append(len(x))
        import time
        time.sleep(0.01)
        return np.repeat(x.reshape(len(x), -1)[:, :1], 3, axis=1)

    async def main():
        batcher = MicroBatcher(predict, max_batch=max_batch, max_wait_ms=5)
        await batcher.start()
        inputs = [np.full((1, 1, 2, 2), i, np.float32) for i in range(20)]
        results = await asyncio.gather(*(batcher.submit(x) for x in inputs))
        await batcher.stop()
        return results

    results = asyncio.run(main())
    assert [r.probs[0, 0] for r in results] == list(range(20))  # each request gets its own rows
    assert sum(calls) == 20 and max(calls) <= max_batch
    assert (len(calls) < 10) if expect_batched else (len(calls) == 20)


def test_draft_box_keeps_the_longest_side_and_the_aspect():
    from cvtasks.serve.imaging import draft_box

    assert draft_box((4032, 3024), 448) == (448, 336)
    assert draft_box((600, 1200), 448) == (224, 448)
    assert draft_box((30, 10), 448)[0] >= 448   # never asks for less than the side


def test_reduced_scale_decoding_is_used_and_keeps_a_light_background_garment():
    """A large JPEG decodes at reduced scale to the same kind of input as in full: garment light
    on black, centred, close to the full decode."""
    from cvtasks.serve.uploads import product_photo

    item = np.zeros((28, 28), np.uint8)
    item[6:22, 8:20] = 220
    photo = product_photo(item, np.random.default_rng(0), (2400, 2400), 1.0).data
    full, reduced = decode(photo, 40_000_000, 0), decode(photo, 40_000_000, 448)
    assert reduced[14, 14] > reduced[1, 1] + 0.2 and reduced[1, 1] < 0.15   # garment lighter than the background
    assert np.abs(full - reduced).mean() < 0.01
    image = Image.open(io.BytesIO(photo))
    image.draft("L", (448, 448))
    assert max(image.size) < 2400   # the DCT scaling took effect


@pytest.mark.slow
def test_reduced_scale_decoding_keeps_the_committed_models_answer_on_real_size_photos():
    """Product photos of 224 to 2,016 px (the sizes the reduced scale was chosen on, there from
    validation items), decoded at the configured reduced scale: the committed classifier predicts
    the same class as from the full decode for >= 99 % of 300 test items."""
    from cvtasks.fashion.data import prepare_data
    from cvtasks.fashion.training import predict_proba
    from cvtasks.models.fashion_classifier import load_classifier, model_path
    from cvtasks.serve.uploads import product_photo

    cfg = config.get("fashion", quick=False)
    items = prepare_data(cfg).x_test[:300]
    net, meta = load_classifier(model_path(cfg))
    rng = np.random.default_rng(cfg.seed)
    photos = [product_photo(item, rng, (224, 2016), 1.0).data for item in items]
    side = config.get("serve", quick=False).decode_draft_side

    def classes(draft_side: int) -> np.ndarray:
        x = np.stack([decode(p, 40_000_000, draft_side) for p in photos])
        return predict_proba(net, (x * 255).round().astype(np.uint8), meta["mean"], meta["std"], device="cpu").argmax(1)

    assert (classes(side) == classes(0)).mean() >= 0.99
