"""Does the service's image decoding alone make RSS climb, and does the C allocator explain it?

The soak (`python -m cvtasks bench soak`) shows the server's RSS rising in steps. Large uploads
are decoded on Starlette's thread pool (many threads, so glibc gives them several malloc
arenas), and a megapixel photo makes float32 arrays of about 4 MB each. This probe decodes the
soak's own generated product photos on a thread pool, in this process, without the web stack,
and prints RSS as it goes; run it under different glibc allocator settings to compare:

    python bench/decode_memory.py                                  # glibc defaults
    MALLOC_ARENA_MAX=2 python bench/decode_memory.py               # at most two arenas
    MALLOC_MMAP_THRESHOLD_=131072 python bench/decode_memory.py    # large blocks always mmapped

Prints one line per checkpoint (decodes done, RSS MB), the growth after the first tenth, and the
process's CPU milliseconds per decode (what a setting costs). Interleave runs of two settings:
this VM's speed drifts by a third within the hour.
"""
from __future__ import annotations

import argparse
import gc
import os
from concurrent.futures import ThreadPoolExecutor

import psutil

import config
from cvtasks.fashion.data import prepare_data
from cvtasks.serve.imaging import ImageError, decode
from cvtasks.serve.memtrace import trim_heap
from cvtasks.serve.uploads import product_uploads


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--decodes", type=int, default=30_000)
    parser.add_argument("--threads", type=int, default=16, help="decoding threads (Starlette's pool has 40)")
    parser.add_argument("--every", type=int, default=3_000, help="decodes between RSS readings")
    parser.add_argument("--trim", action="store_true",
                        help="glibc's malloc_trim(0) before each RSS reading (what ServeConfig.malloc_trim_every_s does)")
    args = parser.parse_args()

    serve, fashion = config.get("serve", quick=False), config.get("fashion", quick=False)
    items = prepare_data(fashion).x_test[:serve.soak_uploads].copy()   # the rest of the data set is let go
    gc.collect()
    uploads = product_uploads(items, serve.soak_uploads, fashion.seed, serve.upload_sizes,
                              serve.upload_jpeg_share, serve.upload_bad_share)
    process = psutil.Process()

    def one(i: int) -> None:
        try:
            decode(uploads[i % len(uploads)].data, serve.max_image_pixels, serve.decode_draft_side)
        except ImageError:
            pass   # the bad uploads, as in the soak

    settings = {k: v for k, v in os.environ.items() if k.startswith("MALLOC_")} or "glibc defaults"
    settings = f"{settings}{', malloc_trim at each reading' if args.trim else ''}"
    print(f"allocator: {settings}; {args.threads} threads; {len(uploads)} distinct uploads")
    readings = []
    cpu_start = process.cpu_times()
    with ThreadPoolExecutor(args.threads) as pool:
        for start in range(0, args.decodes, args.every):
            list(pool.map(one, range(start, start + args.every)))
            if args.trim:
                trim_heap()
            readings.append(process.memory_info().rss / 2**20)
            print(f"{start + args.every:>7} decodes  RSS {readings[-1]:7.1f} MB", flush=True)
    cpu = process.cpu_times()
    cpu_ms = 1000 * (cpu.user + cpu.system - cpu_start.user - cpu_start.system) / args.decodes
    warm = readings[max(0, len(readings) // 10 - 1)]
    print(f"RSS after warm-up {warm:.1f} MB, at the end {readings[-1]:.1f} MB, peak {max(readings):.1f} MB "
          f"(growth {readings[-1] - warm:+.1f} MB); CPU {cpu_ms:.2f} ms per decode")


if __name__ == "__main__":
    main()
