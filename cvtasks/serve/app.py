"""The FastAPI service: /predict, /predict/batch, health probes, Prometheus /metrics.

Bad input always gets a JSON 4xx ``{"error": code, "detail": message}``: the body size is
enforced by an ASGI middleware before the body is read (413), images are checked by
cvtasks.serve.imaging, and FastAPI's validation errors are reshaped to the same form. One JSON
log line per request (id, route, status, latency; never the image bytes).

With several worker processes (``PROMETHEUS_MULTIPROC_DIR`` set, cvtasks.serve.server), every
metric is kept in that folder by prometheus-client's multiprocess mode and /metrics adds the
workers up, whichever of them answers the scrape: counters and histograms summed, the in-flight
gauge summed over live workers, readiness the minimum over them. Each worker also publishes its
own memory and CPU time (summed: the service's), for the resource alerts.
"""
from __future__ import annotations

import asyncio
import json
import logging
import os
import time
import uuid
from collections.abc import Callable
from contextlib import asynccontextmanager
from typing import Any, Protocol

import numpy as np
from fastapi import FastAPI, File, UploadFile
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException as StarletteHTTPException

import config
from cvtasks.serve import memtrace
from cvtasks.serve.batching import MicroBatcher
from cvtasks.serve.imaging import ImageError, decode

log = logging.getLogger("cvtasks.serve")
LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.2, 0.3, 0.5, 1.0, 2.5)
ROUTES = {"/predict", "/predict/batch", "/health/live", "/health/ready", "/metrics", "/docs", "/openapi.json"}
INLINE_DECODE_BYTES = 64 * 1024   # larger uploads are decoded in a worker thread


class Classifier(Protocol):
    classes: list[str]
    version: str
    name: str

    def predict(self, x: np.ndarray) -> np.ndarray: ...


MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"


class Metrics:
    """The service's Prometheus metrics, in a registry of its own (one per app); in
    multiprocess mode the values live in ``PROMETHEUS_MULTIPROC_DIR`` and /metrics aggregates
    every worker's."""

    def __init__(self) -> None:
        self.multiprocess = bool(os.environ.get(MULTIPROC_ENV))
        self.registry = CollectorRegistry()
        r = self.registry
        self.requests = Counter("http_requests_total", "HTTP requests by route and status",
                                ["route", "method", "status"], registry=r)
        self.latency = Histogram("http_request_duration_seconds", "Request latency", ["route"],
                                 buckets=LATENCY_BUCKETS, registry=r)
        self.in_flight = Gauge("http_requests_in_flight", "Requests being served", registry=r,
                               multiprocess_mode="livesum")
        self.inference = Histogram("model_inference_seconds", "Model call time per batch",
                                   buckets=(0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25), registry=r)
        self.batch_size = Histogram("model_batch_size", "Images per model call",
                                    buckets=(1, 2, 4, 8, 16, 32, 64, 128), registry=r)
        self.model = Gauge("model_info", "The model being served (1, with its name and version)",
                           ["name", "version"], registry=r, multiprocess_mode="max")
        self.ready = Gauge("model_ready", "1 once the model is loaded and warmed up (every worker)", registry=r,
                           multiprocess_mode="livemin")
        self.workers_ready = Gauge("service_workers_ready", "Worker processes that are ready", registry=r,
                                   multiprocess_mode="livesum")
        self.memory = Gauge("service_memory_bytes", "Resident memory of the service's processes", registry=r,
                            multiprocess_mode="livesum")
        self.cpu = Gauge("service_cpu_seconds_total", "CPU seconds the service's processes have used", registry=r,
                         multiprocess_mode="livesum")
        self.cores = Gauge("service_cpu_cores", "CPU cores the service may use", registry=r, multiprocess_mode="max")
        self.cores.set(len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1)

    def on_batch(self, size: int, seconds: float) -> None:
        self.batch_size.observe(size)
        self.inference.observe(seconds)

    def sample_resources(self) -> None:
        """This process's memory and CPU time, now."""
        import resource

        usage = resource.getrusage(resource.RUSAGE_SELF)
        self.cpu.set(usage.ru_utime + usage.ru_stime)
        try:
            with open("/proc/self/statm") as fh:
                self.memory.set(int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE"))
        except OSError:   # not Linux: the peak instead of the current size
            self.memory.set(usage.ru_maxrss * 1024)

    async def sample_forever(self, every_s: float = 1.0) -> None:
        """Keeps memory and CPU current in an idle worker too (the resource alerts read them)."""
        while True:
            self.sample_resources()
            await asyncio.sleep(every_s)

    def close(self) -> None:
        """In multiprocess mode: drop this worker's live gauges (its memory, CPU, readiness)."""
        if self.multiprocess:
            from prometheus_client import multiprocess

            multiprocess.mark_process_dead(os.getpid())

    def exposition(self) -> bytes:
        """The text /metrics returns: this registry's, or every worker's in multiprocess mode."""
        self.sample_resources()
        if not self.multiprocess:
            return generate_latest(self.registry)
        from prometheus_client import multiprocess

        merged = CollectorRegistry()
        multiprocess.MultiProcessCollector(merged)
        return generate_latest(merged)


def _error(status: int, code: str, detail: Any) -> JSONResponse:
    return JSONResponse({"error": code, "detail": detail}, status_code=status)


class RequestMiddleware:
    """Request id, body-size limit before the body is read, metrics and one JSON log line."""

    def __init__(self, app: Any, metrics: Metrics, max_body: int):
        self.app, self.metrics, self.max_body = app, metrics, max_body

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        start = time.perf_counter()
        headers = dict(scope.get("headers") or [])
        request_id = headers.get(b"x-request-id", b"").decode()[:64] or uuid.uuid4().hex
        route = scope["path"] if scope["path"] in ROUTES else "other"
        state = {"status": 500, "started": False, "too_large": False, "received": 0}

        async def send_wrapper(message):
            if message["type"] == "http.response.start":
                if state["too_large"]:
                    return  # replaced by our 413 below
                state["status"], state["started"] = message["status"], True
                message.setdefault("headers", []).append((b"x-request-id", request_id.encode()))
            elif state["too_large"]:
                return
            await send(message)

        async def receive_wrapper():
            message = await receive()
            if message["type"] == "http.request":
                state["received"] += len(message.get("body", b""))
                if state["received"] > self.max_body:
                    state["too_large"] = True
                    return {"type": "http.disconnect"}  # stop reading: the client sent too much
            return message

        self.metrics.in_flight.inc()
        try:
            declared = headers.get(b"content-length")
            if declared is not None and declared.isdigit() and int(declared) > self.max_body:
                state["too_large"] = True
            else:
                await self.app(scope, receive_wrapper, send_wrapper)
            if state["too_large"] and not state["started"]:
                state["status"], state["started"] = 413, True
                response = _error(413, "payload_too_large",
                                  f"the request body exceeds the limit of {self.max_body} bytes")
                response.headers["x-request-id"] = request_id
                await response(scope, receive, send)
        finally:
            seconds = time.perf_counter() - start
            self.metrics.in_flight.dec()
            self.metrics.requests.labels(route, scope["method"], str(state["status"])).inc()
            self.metrics.latency.labels(route).observe(seconds)
            log.info(json.dumps({"event": "request", "request_id": request_id, "method": scope["method"],
                                 "route": route, "status": state["status"],
                                 "latency_ms": round(seconds * 1000, 3), "bytes_in": state["received"]}))


def create_app(load_classifier: Callable[[], Classifier], settings: config.ServeConfig | None = None) -> FastAPI:
    """The service; ``load_classifier`` runs at start-up (the app is ready once it has warmed up)."""
    settings = settings or config.get("serve")
    memtrace.set_mmap_threshold(settings.malloc_mmap_threshold)   # per process: each worker builds its app
    metrics = Metrics()
    holder: dict[str, Any] = {}

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        clf = await run_in_threadpool(load_classifier)
        for n in sorted({1, settings.max_batch}):  # warm-up: first calls allocate and optimise
            clf.predict(np.zeros((n, 1, 28, 28), np.float32))
        batcher = MicroBatcher(clf.predict, settings.max_batch, settings.max_wait_ms, metrics.on_batch)
        await batcher.start()
        holder.update(clf=clf, batcher=batcher)
        metrics.model.labels(clf.name, clf.version).set(1)
        metrics.ready.set(1)
        metrics.workers_ready.set(1)
        sampler = asyncio.create_task(metrics.sample_forever())
        trimmer = (asyncio.create_task(memtrace.trim_forever(settings.malloc_trim_every_s))
                   if settings.malloc_trim_every_s else None)
        trace = memtrace.trace_target()   # bench memory: what the heap holds over a long run
        tracer = asyncio.create_task(memtrace.watch(trace, settings.soak_window_s * 6)) if trace else None
        log.info(json.dumps({"event": "ready", "model": clf.name, "version": clf.version}))
        try:
            yield
        finally:
            metrics.ready.set(0)
            metrics.workers_ready.set(0)
            sampler.cancel()
            if trimmer is not None:
                trimmer.cancel()
            if tracer is not None:
                tracer.cancel()
            await batcher.stop()
            metrics.close()
            log.info(json.dumps({"event": "stopped"}))

    app = FastAPI(title="Fashion product classifier",
                  description="Upload a product photo; get its category (Fashion-MNIST classes).",
                  version="1.0", lifespan=lifespan)
    app.add_middleware(RequestMiddleware, metrics=metrics, max_body=settings.max_upload_bytes)
    app.state.metrics = metrics

    @app.exception_handler(ImageError)
    async def image_error(_, err: ImageError):
        return _error(err.status, err.code, err.message)

    @app.exception_handler(RequestValidationError)
    async def validation_error(_, err: RequestValidationError):
        fields = [".".join(str(p) for p in e.get("loc", ())) + f": {e.get('msg')}" for e in err.errors()]
        return _error(422, "invalid_request", "; ".join(fields) or "invalid request")

    @app.exception_handler(StarletteHTTPException)
    async def http_error(_, err: StarletteHTTPException):
        return _error(err.status_code, "http_error", err.detail)

    def top_k(probs: np.ndarray) -> list[dict[str, Any]]:
        classes = holder["clf"].classes
        order = np.argsort(-probs)[:settings.top_k]
        return [{"class": classes[i], "probability": round(float(probs[i]), 6)} for i in order]

    async def read_image(upload: UploadFile, index: int | None = None) -> np.ndarray:
        where = "" if index is None else f"file {index} ({upload.filename}): "
        kind = (upload.content_type or "").split(";")[0].strip().lower()
        if kind and not (kind.startswith("image/") or kind == "application/octet-stream"):
            raise ImageError(415, "unsupported_media_type", f"{where}content type {kind} is not an image")
        data = await upload.read()
        try:
            if len(data) > INLINE_DECODE_BYTES:
                return await run_in_threadpool(decode, data, settings.max_image_pixels, settings.decode_draft_side)
            return decode(data, settings.max_image_pixels, settings.decode_draft_side)
        except ImageError as err:
            raise ImageError(err.status, err.code, where + err.message) from None

    def not_ready() -> JSONResponse | None:
        return None if "batcher" in holder else _error(503, "not_ready", "the model is loading")

    @app.post("/predict", summary="Classify one image (PNG, JPEG, WebP, GIF)")
    async def predict(file: UploadFile = File(..., description="the product photo")):
        if (busy := not_ready()) is not None:
            return busy
        x = await read_image(file)
        result = await holder["batcher"].submit(x[None, None])
        return {"predictions": top_k(result.probs[0]), "model_version": holder["clf"].version,
                "inference_ms": round(result.inference_s * 1000, 3), "batch_size": result.batch_size}

    @app.post("/predict/batch", summary="Classify several images in one request")
    async def predict_batch(files: list[UploadFile] = File(..., description="the product photos")):
        if (busy := not_ready()) is not None:
            return busy
        if len(files) > settings.max_files_per_batch:
            raise ImageError(413, "too_many_files",
                             f"{len(files)} files; at most {settings.max_files_per_batch} per request")
        x = np.stack([await read_image(f, i) for i, f in enumerate(files)])[:, None]
        result = await holder["batcher"].submit(x)
        return {"results": [{"file": f.filename, "predictions": top_k(p)} for f, p in zip(files, result.probs)],
                "model_version": holder["clf"].version, "inference_ms": round(result.inference_s * 1000, 3)}

    @app.get("/health/live", summary="The process is up")
    async def live():
        return {"status": "live"}

    @app.get("/health/ready", summary="The model is loaded and warmed up")
    async def ready():
        if (busy := not_ready()) is not None:
            return busy
        return {"status": "ready", "model": holder["clf"].name, "version": holder["clf"].version}

    @app.get("/metrics", summary="Prometheus metrics")
    async def prometheus():
        return Response(metrics.exposition(), media_type=CONTENT_TYPE_LATEST)

    return app
