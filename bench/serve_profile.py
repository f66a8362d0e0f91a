"""Where the service's CPU goes at 300 req/s: a py-spy profile of the server under load.

    python bench/serve_profile.py [--quick] [--seconds 10] [--rate 300]

Starts the service (one worker, the INT8 model) on loopback, drives it at a fixed rate with
28 x 28 PNG uploads, records the server with py-spy, and writes
docs/img/serve_flame.svg (the flame graph of docs/serve.md). Prints server CPU ms per request
and the share of py-spy samples by part of the request path (the deepest matching frame wins;
``event loop`` is uvloop's C code: socket reads and writes and HTTP parsing). py-spy needs
ptrace rights (root, or kernel.yama.ptrace_scope = 0).
"""
from __future__ import annotations

import argparse
import collections
import re
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import config  # noqa: E402
from cvtasks.fashion.data import prepare_data  # noqa: E402
from cvtasks.serve import loadtest  # noqa: E402
from cvtasks.serve.uploads import small_png  # noqa: E402

PARTS = [("model (onnxruntime)", r"backends\.py|onnxruntime"), ("image decode (PIL)", r"imaging\.py|PIL/|images\.py"),
         ("multipart parsing", r"multipart|formparsers"), ("request log line", r"logging/|json/"),
         ("prometheus metrics", r"prometheus_client"), ("micro-batching", r"batching\.py"),
         ("FastAPI / Starlette / pydantic", r"fastapi/|pydantic|starlette/"),
         ("uvicorn (HTTP protocol)", r"uvicorn/protocols|httptools"),
         ("worker threads waiting", r"threading\.py|concurrent/futures/thread\.py"),
         ("event loop (uvloop, C)", r"asyncio|uvloop|runners\.py")]


def shares(collapsed: Path) -> collections.Counter:
    counts: collections.Counter = collections.Counter()
    for line in collapsed.read_text().splitlines():
        stack, n = line.rsplit(" ", 1)
        part = next((name for frame in reversed(stack.split(";")) for name, pattern in PARTS
                     if re.search(pattern, frame)), "other")
        counts[part] += int(n)
    return counts


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="profile the quick model")
    ap.add_argument("--seconds", type=float, default=10.0)
    ap.add_argument("--rate", type=float, default=300.0)
    args = ap.parse_args()
    settings = config.get("serve", quick=args.quick)
    items = prepare_data(config.get("fashion", quick=args.quick)).x_test[:64]
    uploads = [small_png(im) for im in items]
    spy = str(Path(sys.executable).with_name("py-spy"))
    out_svg = config.ROOT / "docs" / "img" / "serve_flame.svg"
    out_svg.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        server = loadtest.start_server("onnx", settings.model_path, tmp / "server.log", max_batch=settings.max_batch,
                                       threads=settings.threads)
        sampler = loadtest.ResourceSampler(server.process.pid)
        try:
            loadtest.drive(server, sampler, uploads, rate=None, concurrency=4, seconds=1.0, max_requests=200)
            record = [spy, "record", "--pid", str(server.process.pid), "--duration", str(int(args.seconds)),
                      "--rate", "250", "--nonblocking"]
            recorders = [subprocess.Popen(record + ["--format", fmt, "--output", str(path)],
                                          stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
                         for fmt, path in (("flamegraph", out_svg), ("raw", tmp / "stacks.txt"))]
            result = loadtest.drive(server, sampler, uploads, rate=args.rate, concurrency=32,
                                    seconds=args.seconds + 1, max_requests=int(args.rate * (args.seconds + 1)))
            for r in recorders:
                r.wait()
        finally:
            sampler.stop()
            loadtest.stop_server(server)
        summary = result.summary()
        print(f"{summary['rps']} req/s served, p95 {summary['p95_ms']} ms, server CPU "
              f"{summary['cpu_ms_per_request']} ms per request (two py-spy recorders attached: a little higher "
              "than without)")
        counts = shares(tmp / "stacks.txt")
        total = sum(counts.values())
        for part, n in counts.most_common():
            print(f"  {part:<34} {100 * n / total:5.1f} % of samples")
    print(f"wrote {out_svg}")


if __name__ == "__main__":
    main()
