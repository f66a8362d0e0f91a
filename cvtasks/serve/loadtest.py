"""The load tests behind ``python -m cvtasks bench serve`` and ``bench soak``.

Starts the service as a separate process on loopback, waits until it is ready (cold start =
process start -> ready), drives it with bounded load (fixed request rates, open loop; then
saturation with a fixed number of requests in flight), samples the server's RSS and CPU, stops
it with SIGTERM, and does the same for the naive baseline (PyTorch eager, one request at a
time). The soak holds the target rate for minutes with realistic uploads and records the run
window by window. Every run is bounded in time and in count, and only 127.0.0.1 is ever
addressed. Server CPU is measured over the server's whole process tree (its workers too), as
CPU seconds per request served. The load generator runs on the same machine and its CPU is
not counted.
"""
from __future__ import annotations

import asyncio
import datetime
import json
import os
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
from cvtasks.data.fashion_mnist import load_split
from cvtasks.models.fashion_classifier import load_classifier, model_path
from cvtasks.provenance import file_sha256, git_commit
from cvtasks.serve import memtrace
from cvtasks.serve.backends import OnnxClassifier, TorchClassifier
from cvtasks.serve.export import Normalised, model_version
from cvtasks.serve.imaging import decode
from cvtasks.serve.uploads import Upload, kind_uploads, product_uploads, small_png
from cvtasks.stats import Interval, bootstrap

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


READY_TIMEOUT_S = 60.0   # a server not ready by then has failed (a cold start takes seconds)


def start_server(backend: str, model: Path, log: Path, *, max_batch: int, threads: int, workers: int = 1,
                 draft_side: int | None = None, env: dict[str, str] | None = None) -> Server:
    """Start ``python -m cvtasks serve`` on a free loopback port and wait for /health/ready
    (``draft_side`` None: the configured JPEG decoding; ``env``: added to the server's environment)."""
    import urllib.request

    port = free_port()
    cmd = [sys.executable, "-m", "cvtasks", "serve", "--backend", backend, "--model", str(model),
           "--host", HOST, "--port", str(port), "--max-batch", str(max_batch), "--threads", str(threads),
           "--workers", str(workers)] + ([] if draft_side is None else ["--decode-draft-side", str(draft_side)])
    start = time.perf_counter()
    with open(log, "w") as out:
        process = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, cwd=config.ROOT,
                                   env={**os.environ, **(env or {})})
    url = f"http://{HOST}:{port}"
    while time.perf_counter() - start < READY_TIMEOUT_S:
        if process.poll() is not None:
            raise RuntimeError(f"the server exited with {process.returncode}; see {log}")
        try:
            with urllib.request.urlopen(f"{url}/health/ready", timeout=1) as r:
                if r.status == 200 and _all_workers_ready(url, workers):
                    return Server(process, url, time.perf_counter() - start, log)
        except OSError:
            pass
        time.sleep(0.02)
    process.kill()
    raise TimeoutError(f"the server was not ready within {READY_TIMEOUT_S:.0f} s; see {log}")


def _all_workers_ready(url: str, workers: int) -> bool:
    """One worker answering /health/ready is not all of them: count their ``service_cpu_cores``
    files' readiness through /metrics (``model_ready`` is the minimum over live workers)."""
    if workers == 1:
        return True
    import urllib.request

    with urllib.request.urlopen(f"{url}/metrics", timeout=1) as r:
        text = r.read().decode()
    ready = [line for line in text.splitlines() if line.startswith("service_workers_ready ")]
    return bool(ready) and float(ready[0].split()[1]) >= workers


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
    """Samples the server's processes (the main one and its workers) in a thread: total RSS
    (series and peak) and total CPU seconds."""

    def __init__(self, pid: int, every_s: float = 0.1):
        self.root, self.every = psutil.Process(pid), every_s
        self._procs: dict[int, psutil.Process] = {}
        self._cpu_done = 0.0          # CPU seconds of processes that have exited
        self._last_cpu: dict[int, float] = {}
        self.series: list[tuple[float, float, float]] = []   # (perf_counter, rss bytes, cpu seconds)
        self.peak_rss = 0.0
        self._lock = threading.Lock()
        self.sample()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def sample(self) -> tuple[float, float, float]:
        with self._lock:
            try:
                found = [self.root, *self.root.children(recursive=True)]
            except psutil.Error:
                found = []
            rss, alive = 0.0, set()
            for proc in found:
                proc = self._procs.setdefault(proc.pid, proc)   # the same object keeps its CPU counters
                try:
                    times = proc.cpu_times()
                    rss += proc.memory_info().rss
                except psutil.Error:
                    continue
                self._last_cpu[proc.pid] = times.user + times.system
                alive.add(proc.pid)
            for pid in set(self._last_cpu) - alive:
                self._cpu_done += self._last_cpu.pop(pid)
                self._procs.pop(pid, None)
            point = (time.perf_counter(), rss, self._cpu_done + sum(self._last_cpu.values()))
            self.series.append(point)
            self.peak_rss = max(self.peak_rss, rss)
            return point

    def _run(self) -> None:
        while not self._stop.wait(self.every):
            self.sample()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()


@dataclass
class LoadResult:
    mode: str
    offered_rps: float | None
    seconds: float
    records: list[tuple[float, float, bool]] = field(default_factory=list)  # (sent, latency s, answered as expected)
    rejected: int = 0        # bad uploads answered with a 4xx, as they should be
    cpu_seconds: float | None = None

    @property
    def errors(self) -> int:
        return sum(not ok for _, _, ok in self.records)

    def summary(self) -> dict[str, Any]:
        n = len(self.records)
        served = n - self.errors
        lat = latency_ms(self.records)
        return {"mode": self.mode, "offered_rps": self.offered_rps, "requests": n,
                "rps": round(served / self.seconds, 1),
                "mean_ms": round(float(lat.mean()), 2), **percentiles(lat),
                "errors": self.errors, "error_rate": round(self.errors / max(n, 1), 4), "rejected_4xx": self.rejected,
                "server_cpu_percent": None if self.cpu_seconds is None else round(100 * self.cpu_seconds / self.seconds, 1),
                "cpu_ms_per_request": None if self.cpu_seconds is None else round(1000 * self.cpu_seconds / max(served, 1), 3)}


def latency_ms(records) -> np.ndarray:
    lat = np.array([latency for _, latency, ok in records if ok]) * 1000
    return lat if lat.size else np.array([np.nan])


def percentiles(lat_ms: np.ndarray) -> dict[str, float]:
    return {f"p{q}_ms": round(float(np.percentile(lat_ms, q)), 2) for q in (50, 95, 99)}


async def _one(session, url: str, upload: Upload, result: LoadResult, t0: float) -> None:
    import aiohttp

    form = aiohttp.FormData()
    form.add_field("file", upload.data, filename=upload.filename, content_type=upload.content_type)
    start = time.perf_counter()
    try:
        async with session.post(f"{url}/predict", data=form) as r:
            await r.read()
            status = r.status
    except (aiohttp.ClientError, asyncio.TimeoutError):
        status = 0
    refused = 400 <= status < 500
    result.rejected += refused and not upload.good
    ok = status == 200 if upload.good else refused
    result.records.append((start - t0, time.perf_counter() - start, ok))


async def _drive(url: str, uploads: list[Upload], *, rate: float | None, concurrency: int,
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
                tasks.append(asyncio.create_task(_one(session, url, uploads[i % len(uploads)], result, start)))
                i += 1
            await asyncio.gather(*tasks)
        else:
            sent = 0

            async def worker():
                nonlocal sent
                while sent < max_requests and time.perf_counter() < deadline:
                    sent += 1
                    await _one(session, url, uploads[sent % len(uploads)], result, start)

            await asyncio.gather(*(worker() for _ in range(concurrency)))
        result.seconds = time.perf_counter() - start
    return result


def drive(server: Server, sampler: ResourceSampler, uploads: list[Upload], **kw) -> LoadResult:
    """One bounded run; the server's CPU seconds over it come from the sampler."""
    before = sampler.sample()
    result = asyncio.run(_drive(server.url, uploads, **kw))
    result.cpu_seconds = sampler.sample()[2] - before[2]
    return result


def measure_service(backend: str, model: Path, uploads: list[Upload], settings: config.ServeConfig,
                    log_dir: Path, *, max_batch: int, rates: tuple[int, ...], workers: int = 1) -> dict[str, Any]:
    """Cold start, fixed-rate runs, saturation, peak RSS and the exit code of one server."""
    server = start_server(backend, model, log_dir / f"server-{backend}-b{max_batch}-w{workers}.log",
                          max_batch=max_batch, threads=settings.threads, workers=workers)
    sampler = ResourceSampler(server.process.pid)
    try:
        bound = {"seconds": settings.bench_seconds, "max_requests": settings.bench_max_requests}
        drive(server, sampler, uploads, rate=None, concurrency=4, seconds=1.0, max_requests=200)  # warm-up
        runs = [median_run([drive(server, sampler, uploads, rate=r, concurrency=settings.bench_concurrency,
                                  **bound).summary() for _ in range(settings.bench_repeats)]) for r in rates]
        runs.append(drive(server, sampler, uploads, rate=None, concurrency=settings.bench_concurrency,
                          **bound).summary())
    finally:
        sampler.stop()
        graceful = stop_server(server)
    return {"backend": backend, "max_batch": max_batch, "workers": workers,
            "cold_start_s": round(server.cold_start_s, 3), "peak_rss_mb": round(sampler.peak_rss / 2**20, 1),
            "graceful_shutdown": graceful, "runs": runs}


def median_run(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """Repeated runs at one rate: the run with the median CPU per request (its latencies with
    it), and every run's CPU per request, since this machine's speed drifts between runs."""
    ordered = sorted(runs, key=lambda r: r["cpu_ms_per_request"] if r["cpu_ms_per_request"] is not None else np.inf)
    return {**ordered[(len(ordered) - 1) // 2], "repeats": len(runs),
            "cpu_ms_per_request_runs": [r["cpu_ms_per_request"] for r in runs]}


def _decode_cpu_ms(uploads: list[Upload], max_pixels: int, draft_side: int) -> tuple[np.ndarray, float]:
    """The decoded inputs and the CPU milliseconds per decode, in this process."""
    start = time.process_time()
    arrays = np.stack([decode(u.data, max_pixels, draft_side) for u in uploads])
    return arrays, 1000 * (time.process_time() - start) / len(uploads)


def upload_kind_table(items: np.ndarray, settings: config.ServeConfig, log_dir: Path, seed: int) -> list[dict[str, Any]]:
    """Each upload kind (ServeConfig.upload_kinds) decoded in full and at reduced scale: the CPU
    per decode in process, whether the INT8 model predicts the same class from both, and the
    server's CPU per request (closed loop, two in flight) with each decoding."""
    clf = OnnxClassifier(settings.model_path, threads=settings.threads)
    uploads = {kind[0]: kind_uploads(items, kind, settings.kind_photos, seed) for kind in settings.upload_kinds}
    rows = {name: {"kind": name, "mean_kb": round(float(np.mean([len(u.data) for u in ups])) / 1024, 1)}
            for name, ups in uploads.items()}
    for name, ups in uploads.items():
        full, rows[name]["decode_ms_full"] = _decode_cpu_ms(ups, settings.max_image_pixels, 0)
        draft, rows[name]["decode_ms_draft"] = _decode_cpu_ms(ups, settings.max_image_pixels, settings.decode_draft_side)
        agree = clf.predict(full[:, None]).argmax(1) == clf.predict(draft[:, None]).argmax(1)
        rows[name]["same_class"] = round(float(agree.mean()), 4)
    for label, side in (("full", 0), ("draft", settings.decode_draft_side)):
        server = start_server("onnx", settings.model_path, log_dir / f"server-kinds-{label}.log",
                              max_batch=settings.max_batch, threads=settings.threads, draft_side=side)
        sampler = ResourceSampler(server.process.pid)
        try:
            for name, ups in uploads.items():
                run = drive(server, sampler, ups, rate=None, concurrency=2, seconds=settings.kind_seconds,
                            max_requests=settings.kind_requests).summary()
                rows[name][f"server_cpu_ms_{label}"] = run["cpu_ms_per_request"]
                rows[name][f"errors_{label}"] = run["errors"]
        finally:
            sampler.stop()
            stop_server(server)
    return [{k: round(v, 3) if isinstance(v, float) else v for k, v in row.items()} for row in rows.values()]


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


def stamp(model: Path, load: dict[str, Any]) -> dict[str, Any]:
    """What a bench file measured, and when: the model file, the code, the machine, the load."""
    return {"model_name": model.name, "model_sha256": file_sha256(model), "git_commit": git_commit(),
            "date_utc": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
            "cpu_count": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count(),
            "load": load}


def _needs(quick: bool, **overrides: Any) -> tuple[config.TaskConfig, config.ServeConfig, Path]:
    """The settings (``overrides`` replace ServeConfig fields), and the trained checkpoint (the
    INT8 model must exist too)."""
    fashion_cfg, settings = config.get("fashion", quick=quick), config.get("serve", quick=quick, **overrides)
    checkpoint, flag = model_path(fashion_cfg), " --quick" if quick else ""
    for path, how in ((checkpoint, f"python -m cvtasks run fashion{flag}"),
                      (settings.model_path, f"python -m cvtasks export{flag}")):
        if not path.exists():
            raise FileNotFoundError(f"{path} is missing: run `{how}` first")
    return fashion_cfg, settings, checkpoint


def bench_serve(quick: bool, log_dir: Path) -> dict[str, Any]:
    """The whole load test: inference per backend, the service at each worker count, the same
    model unbatched, the naive baseline, the goals; 28 x 28 PNG uploads."""
    fashion_cfg, settings, checkpoint = _needs(quick)
    int8 = settings.model_path
    fp32 = int8.with_name("model.onnx")
    log_dir.mkdir(parents=True, exist_ok=True)
    x_test = load_split(fashion_cfg.mnist_dir, "test")[0]   # the test items: photos and PNGs are made from them
    images = x_test[:256].astype(np.float32)[:, None] / 255.0
    uploads = [small_png(im) for im in x_test[:64]]

    kinds = upload_kind_table(x_test, settings, log_dir, fashion_cfg.seed)
    net, meta = load_classifier(checkpoint)
    backends = {"torch_eager": TorchClassifier(Normalised(net, meta["mean"], meta["std"]), meta["classes"],
                                               model_version(meta), threads=settings.threads),
                "onnx_fp32": OnnxClassifier(fp32, threads=settings.threads),
                "onnx_int8": OnnxClassifier(int8, threads=settings.threads)}
    inference = {name: inference_ms(clf.predict, images) for name, clf in backends.items()}

    by_workers = [measure_service("onnx", int8, uploads, settings, log_dir, max_batch=settings.max_batch,
                                  rates=settings.bench_rates, workers=w) for w in settings.bench_workers]
    service = next((s for s in by_workers if s["workers"] == settings.workers), by_workers[0])
    unbatched = measure_service("onnx", int8, uploads, settings, log_dir, max_batch=1, rates=())
    naive = measure_service("torch", checkpoint, uploads, settings, log_dir, max_batch=1, rates=())
    saturation = lambda result: result["runs"][-1]["rps"]
    at = {run["offered_rps"]: run for run in service["runs"] if run["offered_rps"]}
    top = at.get(max(at)) if at else service["runs"][-1]
    goals = {
        f"p95_ms<=100 at {top['offered_rps']} rps": top["p95_ms"] <= 100,
        f"rps>=0.95*{top['offered_rps']}": top["rps"] >= 0.95 * (top["offered_rps"] or 0),
        f"cpu_ms_per_request<={config.SERVE_GOALS['cpu_ms_per_request']} at {top['offered_rps']} rps":
            (top["cpu_ms_per_request"] or np.inf) <= config.SERVE_GOALS["cpu_ms_per_request"],
        "no errors": all(run["error_rate"] == 0 for s in by_workers for run in s["runs"]),
        "peak_rss_mb<=500": service["peak_rss_mb"] <= 500,
        "cold_start_s<=3": service["cold_start_s"] <= 3,
        "saturation >= 2x naive": saturation(service) >= 2 * saturation(naive),
        "model_mb<=100": int8.stat().st_size / 2**20 <= 100,
    }
    load = {"uploads": "28x28 PNG, Fashion-MNIST test items", "distinct_uploads": len(uploads),
            "rates": list(settings.bench_rates), "seconds_per_run": settings.bench_seconds,
            "max_requests_per_run": settings.bench_max_requests, "saturation_concurrency": settings.bench_concurrency,
            "workers": list(settings.bench_workers), "client": "aiohttp, same machine"}
    return {**stamp(int8, load), "quick": quick, "workers": settings.workers, "service": service,
            "service_by_workers": by_workers, "onnx_without_batching": unbatched, "naive_baseline": naive,
            "throughput_ratio_vs_naive": round(saturation(service) / max(saturation(naive), 1e-9), 2),
            "micro_batching_gain": round(saturation(service) / max(saturation(unbatched), 1e-9), 2),
            "upload_kinds": kinds, "decode_draft_side": settings.decode_draft_side,
            "inference_ms": inference, "model_mb": {"int8": round(int8.stat().st_size / 2**20, 3),
                                                   "fp32": round(fp32.stat().st_size / 2**20, 3)},
            "goals_met": goals}


def soak_windows(records, samples, window_s: float) -> list[dict[str, Any]]:
    """Per window of the run: requests, errors, latency percentiles, server RSS and CPU."""
    t_end = max([t for t, _, _ in records] + [0.0])
    samples = np.array(samples)
    rows = []
    for lo in np.arange(0.0, t_end + 1e-9, window_s):
        inside = [r for r in records if lo <= r[0] < lo + window_s]
        near = samples[(samples[:, 0] >= lo) & (samples[:, 0] < lo + window_s)] if len(samples) else samples
        cpu = (100 * (near[-1, 2] - near[0, 2]) / max(near[-1, 0] - near[0, 0], 1e-9)) if len(near) > 1 else np.nan
        rows.append({"t_s": round(float(lo), 1), "requests": len(inside), "errors": sum(not ok for *_, ok in inside),
                     **percentiles(latency_ms(inside)),
                     "rss_mb": round(float(near[:, 1].mean()) / 2**20, 1) if len(near) else None,
                     "cpu_percent": None if np.isnan(cpu) else round(float(cpu), 1)})
    return rows


def rss_slope_mb_per_h(samples, skip_s: float, block_s: float, seed: int) -> Interval:
    """Least-squares slope of the server's RSS after the first ``skip_s`` (warm-up), MB per hour,
    with its 95 % interval from a bootstrap over ``block_s`` blocks of samples."""
    s = np.array(samples)
    s = s[s[:, 0] >= skip_s] if len(s) else s
    if len(s) < 3:
        return Interval(float("nan"), float("nan"), float("nan"))
    hours, mb = s[:, 0] / 3600, s[:, 1] / 2**20

    def slope(rows: np.ndarray) -> float:
        return float(np.polyfit(hours[rows], mb[rows], 1)[0]) if np.ptp(hours[rows]) > 0 else float("nan")

    return bootstrap(slope, len(s), groups=(s[:, 0] // block_s).astype(int), seed=seed)


def soak(quick: bool, log_dir: Path, seconds: float | None = None, trace_memory: bool = False) -> dict[str, Any]:
    """``soak_seconds`` (or ``seconds``) at ``soak_rate`` req/s of generated product photos
    (cvtasks.serve.uploads) against the service as configured (``workers``); per-window latency,
    errors, RSS and CPU. ``trace_memory``: the server traces its heap (cvtasks.serve.memtrace) and
    the result holds the trace and what it says grew."""
    fashion_cfg, settings, _ = _needs(quick, **({"soak_seconds": seconds} if seconds else {}))
    log_dir.mkdir(parents=True, exist_ok=True)
    items = load_split(fashion_cfg.mnist_dir, "test")[0]
    uploads = product_uploads(items, settings.soak_uploads, fashion_cfg.seed, settings.upload_sizes,
                              settings.upload_jpeg_share, settings.upload_bad_share)
    trace = log_dir / "memtrace.jsonl"
    trace.unlink(missing_ok=True)
    server = start_server("onnx", settings.model_path, log_dir / "server-soak.log", max_batch=settings.max_batch,
                          threads=settings.threads, workers=settings.workers,
                          env={memtrace.ENV: str(trace)} if trace_memory else None)
    sampler = ResourceSampler(server.process.pid, every_s=1.0)
    try:
        drive(server, sampler, uploads, rate=None, concurrency=4, seconds=2.0, max_requests=200)   # warm-up
        t0 = sampler.sample()[0]
        n = int(settings.soak_seconds * settings.soak_rate)
        result = drive(server, sampler, uploads, rate=settings.soak_rate, concurrency=settings.bench_concurrency,
                       seconds=settings.soak_seconds, max_requests=n)
    finally:
        sampler.stop()
        graceful = stop_server(server)
    samples = [(t - t0, rss, cpu) for t, rss, cpu in sampler.series if t >= t0]
    overall = result.summary()
    slope = rss_slope_mb_per_h(samples, skip_s=settings.soak_window_s, block_s=settings.soak_slope_block_s,
                               seed=fashion_cfg.seed)
    sizes = [len(u.data) for u in uploads if u.good]
    load = {"uploads": "generated product photos (Fashion-MNIST items rendered in colour on light backgrounds)",
            "distinct_uploads": len(uploads), "sizes_px": list(settings.upload_sizes),
            "jpeg_share": settings.upload_jpeg_share, "bad_share": settings.upload_bad_share,
            "mean_upload_kb": round(float(np.mean(sizes)) / 1024, 1), "rate": settings.soak_rate,
            "seconds": settings.soak_seconds, "workers": settings.workers, "client": "aiohttp, same machine"}
    stamped = stamp(settings.model_path, load)
    return {**stamped, "quick": quick, "duration_s": round(result.seconds, 1),
            "requests": overall["requests"], "errors": overall["errors"], "rejected_4xx": overall["rejected_4xx"],
            "rps": overall["rps"], "mean_ms": overall["mean_ms"], "p50_ms": overall["p50_ms"],
            "p95_ms": overall["p95_ms"], "p99_ms": overall["p99_ms"],
            **{key: round(v, 2) for key, v in slope.items("rss_slope_mb_per_h").items()},
            "peak_rss_mb": round(sampler.peak_rss / 2**20, 1),
            "cpu_percent_mean": overall["server_cpu_percent"],
            "cpu_percent_of_cores": round(overall["server_cpu_percent"] / stamped["cpu_count"], 1),
            "cpu_ms_per_request": overall["cpu_ms_per_request"], "graceful_shutdown": graceful,
            "windows": soak_windows(result.records, samples, settings.soak_window_s),
            **(_memory_trace(trace, skip_s=settings.soak_window_s * 30) if trace_memory else {})}


def _memory_trace(path: Path, skip_s: float) -> dict[str, Any]:
    """The server's memory trace, and what grew after the first ``skip_s`` seconds."""
    records = [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []
    if not records:
        return {"memory_trace": [], "memory_growth": {}}
    return {"memory_trace": records, "memory_growth": memtrace.summary(records, skip_s),
            "note": "tracemalloc was on: latency and CPU of this run are not the soak's figures"}
