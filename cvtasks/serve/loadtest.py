"""The load test behind ``python -m cvtasks bench serve``.

Starts the service as a separate process on loopback, waits until it is ready (cold start =
process start -> ready), drives it with bounded load (fixed request rates, open loop; then
saturation with a fixed number of requests in flight), samples the server's RSS and CPU, stops
it with SIGTERM, and does the same for the naive baseline (PyTorch eager, one request at a
time). Every run is bounded in time and in count, and only 127.0.0.1 is ever addressed.
"""
from __future__ import annotations

import asyncio
import socket
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import psutil

import config

HOST = "127.0.0.1"


def free_port() -> int:
    with socket.socket() as s:
        s.bind((HOST, 0))
        return s.getsockname()[1]


@dataclass
class Server:
    process: subprocess.Popen
    url: str
    cold_start_s: float
    log: Path


def start_server(backend: str, model: Path, log: Path, *, max_batch: int, threads: int,
                 timeout_s: float = 60.0) -> Server:
    """Start ``python -m cvtasks serve`` on a free loopback port and wait for /health/ready."""
    import urllib.request

    port = free_port()
    cmd = [sys.executable, "-m", "cvtasks", "serve", "--backend", backend, "--model", str(model),
           "--host", HOST, "--port", str(port), "--max-batch", str(max_batch), "--threads", str(threads)]
    start = time.perf_counter()
    with open(log, "w") as out:
        process = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, cwd=config.ROOT)
    url = f"http://{HOST}:{port}"
    while time.perf_counter() - start < timeout_s:
        if process.poll() is not None:
            raise RuntimeError(f"the server exited with {process.returncode}; see {log}")
        try:
            with urllib.request.urlopen(f"{url}/health/ready", timeout=1) as r:
                if r.status == 200:
                    return Server(process, url, time.perf_counter() - start, log)
        except OSError:
            time.sleep(0.02)
    process.kill()
    raise TimeoutError(f"the server was not ready within {timeout_s:.0f} s; see {log}")


def stop_server(server: Server, timeout_s: float = 15.0) -> bool:
    """SIGTERM, then wait; True when the server shut down gracefully (its log says so; uvicorn
    re-raises the signal after a clean shutdown, so the exit code alone cannot tell)."""
    server.process.terminate()
    try:
        server.process.wait(timeout=timeout_s)
    except subprocess.TimeoutExpired:
        server.process.kill()
        server.process.wait()
        return False
    return "Application shutdown complete" in server.log.read_text()


class ResourceSampler:
    """Samples a process's RSS (peak) and CPU % (mean over a window) in a thread."""

    def __init__(self, pid: int, every_s: float = 0.1):
        self.proc, self.every = psutil.Process(pid), every_s
        self.peak_rss = self.proc.memory_info().rss
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(self.every):
            try:
                self.peak_rss = max(self.peak_rss, self.proc.memory_info().rss)
            except psutil.Error:
                return

    def cpu_window(self):
        """Call once before and once after a run: returns mean CPU % in between (100 = one core)."""
        times = self.proc.cpu_times()
        return time.perf_counter(), times.user + times.system

    @staticmethod
    def cpu_percent(before, after) -> float:
        return 100.0 * (after[1] - before[1]) / max(after[0] - before[0], 1e-9)

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()


@dataclass
class LoadResult:
    mode: str
    offered_rps: float | None
    seconds: float
    latencies: list[float] = field(default_factory=list)
    errors: int = 0
    cpu_percent: float | None = None

    def summary(self) -> dict[str, Any]:
        n = len(self.latencies) + self.errors
        lat = np.array(self.latencies) * 1000 if self.latencies else np.array([np.nan])
        return {"mode": self.mode, "offered_rps": self.offered_rps, "requests": n,
                "rps": round(len(self.latencies) / self.seconds, 1),
                "mean_ms": round(float(lat.mean()), 2), "p50_ms": round(float(np.percentile(lat, 50)), 2),
                "p95_ms": round(float(np.percentile(lat, 95)), 2), "p99_ms": round(float(np.percentile(lat, 99)), 2),
                "error_rate": round(self.errors / max(n, 1), 4),
                "server_cpu_percent": None if self.cpu_percent is None else round(self.cpu_percent, 1)}


async def _one(session, url: str, payload: bytes, result: LoadResult) -> None:
    import aiohttp

    form = aiohttp.FormData()
    form.add_field("file", payload, filename="item.png", content_type="image/png")
    start = time.perf_counter()
    try:
        async with session.post(f"{url}/predict", data=form) as r:
            await r.read()
            ok = r.status == 200
    except aiohttp.ClientError:
        ok = False
    if ok:
        result.latencies.append(time.perf_counter() - start)
    else:
        result.errors += 1


async def _drive(url: str, payloads: list[bytes], *, rate: float | None, concurrency: int,
                 seconds: float, max_requests: int) -> LoadResult:
    """Open loop at ``rate`` requests/s, or (rate None) closed loop with ``concurrency`` in flight."""
    import aiohttp

    result = LoadResult("fixed_rate" if rate else "saturation", rate, seconds)
    connector = aiohttp.TCPConnector(limit=max(concurrency, 64))
    async with aiohttp.ClientSession(connector=connector, timeout=aiohttp.ClientTimeout(total=10)) as session:
        start = time.perf_counter()
        deadline = start + seconds
        if rate:
            tasks, i = [], 0
            while i < max_requests and time.perf_counter() < deadline:
                due = start + i / rate
                if due > time.perf_counter():
                    await asyncio.sleep(due - time.perf_counter())
                tasks.append(asyncio.create_task(_one(session, url, payloads[i % len(payloads)], result)))
                i += 1
            await asyncio.gather(*tasks)
        else:
            sent = 0

            async def worker():
                nonlocal sent
                while sent < max_requests and time.perf_counter() < deadline:
                    sent += 1
                    await _one(session, url, payloads[sent % len(payloads)], result)

            await asyncio.gather(*(worker() for _ in range(concurrency)))
        result.seconds = time.perf_counter() - start
    return result


def drive(server: Server, sampler: ResourceSampler, payloads: list[bytes], **kw) -> dict[str, Any]:
    before = sampler.cpu_window()
    result = asyncio.run(_drive(server.url, payloads, **kw))
    result.cpu_percent = ResourceSampler.cpu_percent(before, sampler.cpu_window())
    return result.summary()


def measure_service(backend: str, model: Path, payloads: list[bytes], settings: config.ServeConfig,
                    log_dir: Path, *, max_batch: int, rates: tuple[int, ...]) -> dict[str, Any]:
    """Cold start, fixed-rate runs, saturation, peak RSS and the exit code of one server."""
    server = start_server(backend, model, log_dir / f"server-{backend}-b{max_batch}.log",
                          max_batch=max_batch, threads=settings.threads)
    sampler = ResourceSampler(server.process.pid)
    try:
        bound = {"seconds": settings.bench_seconds, "max_requests": settings.bench_max_requests}
        drive(server, sampler, payloads, rate=None, concurrency=4, seconds=1.0, max_requests=200)  # warm-up
        runs = [drive(server, sampler, payloads, rate=r, concurrency=settings.bench_concurrency, **bound)
                for r in rates]
        runs.append(drive(server, sampler, payloads, rate=None, concurrency=settings.bench_concurrency, **bound))
    finally:
        sampler.stop()
        graceful = stop_server(server)
    return {"backend": backend, "max_batch": max_batch, "cold_start_s": round(server.cold_start_s, 3),
            "peak_rss_mb": round(sampler.peak_rss / 2**20, 1), "graceful_shutdown": graceful, "runs": runs}


def inference_ms(predict, images: np.ndarray, repeats: int = 200) -> dict[str, float]:
    """Milliseconds per image for batch 1 and per image within a batch of 32."""
    x1, x32 = images[:1], images[:32]
    for _ in range(10):
        predict(x1)
    start = time.perf_counter()
    for i in range(repeats):
        predict(images[i % len(images)][None])
    single = (time.perf_counter() - start) / repeats * 1000
    start = time.perf_counter()
    for _ in range(max(repeats // 32, 5)):
        predict(x32)
    batched = (time.perf_counter() - start) / max(repeats // 32, 5) / 32 * 1000
    return {"batch1_ms": round(single, 3), "batch32_ms_per_image": round(batched, 4)}


def _png(image: np.ndarray) -> bytes:
    import io as _io

    from PIL import Image

    buf = _io.BytesIO()
    Image.fromarray(image).save(buf, format="PNG")
    return buf.getvalue()


def bench_serve(quick: bool, log_dir: Path) -> dict[str, Any]:
    """The whole load test: inference per backend, the service, the naive baseline, the goals."""
    from cvtasks.fashion.data import prepare_data
    from cvtasks.fashion.training import load_classifier, model_path
    from cvtasks.serve.backends import OnnxClassifier, TorchClassifier
    from cvtasks.serve.export import Normalised, model_version

    fashion_cfg, settings = config.get("fashion", quick=quick), config.get("serve", quick=quick)
    checkpoint, int8 = model_path(fashion_cfg), settings.model_path
    fp32 = int8.with_name("model.onnx")
    flag = " --quick" if quick else ""
    for path, how in ((checkpoint, f"python -m cvtasks run fashion{flag}"), (int8, f"python -m cvtasks export{flag}")):
        if not path.exists():
            raise FileNotFoundError(f"{path} is missing: run `{how}` first")
    log_dir.mkdir(parents=True, exist_ok=True)
    data = prepare_data(fashion_cfg)
    images = data.x_test[:256].astype(np.float32)[:, None] / 255.0
    payloads = [_png(im) for im in data.x_test[:64]]

    net, meta = load_classifier(checkpoint)
    backends = {"torch_eager": TorchClassifier(Normalised(net, meta["mean"], meta["std"]), meta["classes"],
                                               model_version(meta), threads=settings.threads),
                "onnx_fp32": OnnxClassifier(fp32, threads=settings.threads),
                "onnx_int8": OnnxClassifier(int8, threads=settings.threads)}
    inference = {name: inference_ms(clf.predict, images) for name, clf in backends.items()}

    service = measure_service("onnx", int8, payloads, settings, log_dir,
                              max_batch=settings.max_batch, rates=settings.bench_rates)
    unbatched = measure_service("onnx", int8, payloads, settings, log_dir, max_batch=1, rates=())
    naive = measure_service("torch", checkpoint, payloads, settings, log_dir, max_batch=1, rates=())
    saturation = lambda result: result["runs"][-1]["rps"]  # noqa: E731
    at = {run["offered_rps"]: run for run in service["runs"] if run["offered_rps"]}
    top = at.get(max(at)) if at else service["runs"][-1]
    goals = {
        f"p95_ms<=100 at {top['offered_rps']} rps": top["p95_ms"] <= 100,
        f"rps>=0.95*{top['offered_rps']}": top["rps"] >= 0.95 * (top["offered_rps"] or 0),
        "no errors": all(run["error_rate"] == 0 for run in service["runs"]),
        "peak_rss_mb<=500": service["peak_rss_mb"] <= 500,
        "cold_start_s<=3": service["cold_start_s"] <= 3,
        "saturation >= 2x naive": saturation(service) >= 2 * saturation(naive),
        "model_mb<=100": int8.stat().st_size / 2**20 <= 100,
    }
    return {"quick": quick, "service": service, "onnx_without_batching": unbatched, "naive_baseline": naive,
            "throughput_ratio_vs_naive": round(saturation(service) / max(saturation(naive), 1e-9), 2),
            "micro_batching_gain": round(saturation(service) / max(saturation(unbatched), 1e-9), 2),
            "inference_ms": inference, "model_mb": {"int8": round(int8.stat().st_size / 2**20, 3),
                                                   "fp32": round(fp32.stat().st_size / 2**20, 3)},
            "goals_met": goals}
