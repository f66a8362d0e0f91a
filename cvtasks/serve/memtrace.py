"""The service's memory: glibc's mmap threshold (``set_mmap_threshold``), handing freed memory
back to the system (``trim_forever``), and what the heap holds over a long run (``python -m
cvtasks bench memory``).

A soak's RSS can step up and stay (docs/serve.md). RSS alone cannot say why, so with
``CVTASKS_MEMTRACE=<file>`` set, the service starts tracemalloc (one frame per allocation) and
every ``every_s`` appends one JSON line: its RSS; the memory Python objects and NumPy arrays hold
(tracemalloc: current and peak); glibc's view of the C heap (``mallinfo2``: bytes in use, bytes
free but kept in its arenas); and the source lines whose traced memory grew most since the
first line. Memory that no line accounts for is native (onnxruntime, the allocator). Tracing
costs CPU, so this run's latency and CPU are not the soak's figures.
"""
from __future__ import annotations

import asyncio
import ctypes
import ctypes.util
import functools
import json
import os
import time
import tracemalloc
from pathlib import Path
from typing import Any

import psutil

ENV = "CVTASKS_MEMTRACE"
MB = 2 ** 20


class _MallInfo2(ctypes.Structure):
    _fields_ = [(name, ctypes.c_size_t) for name in ("arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks",
                                                      "fsmblks", "uordblks", "fordblks", "keepcost")]


M_MMAP_THRESHOLD = -3   # mallopt's parameter number (glibc malloc.h)


@functools.lru_cache(maxsize=1)
def _libc():
    try:
        return ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
    except OSError:
        return None


def set_mmap_threshold(nbytes: int) -> bool:
    """Serve blocks of ``nbytes`` and more from their own mmap, returned to the system when freed,
    instead of from glibc's arenas, which keep freed memory (RSS) at the high-water mark of the
    requests in flight. 0 leaves glibc's default (a threshold that adapts upwards). Returns
    whether it was set (False where the C library is not glibc)."""
    libc = _libc()
    if not nbytes or libc is None or not hasattr(libc, "mallopt"):
        return False
    return bool(libc.mallopt(M_MMAP_THRESHOLD, int(nbytes)))


def trim_heap() -> bool:
    """Hand the memory glibc has freed but keeps in its arenas back to the system
    (``malloc_trim(0)``); False where the C library is not glibc."""
    libc = _libc()
    if libc is None or not hasattr(libc, "malloc_trim"):
        return False
    libc.malloc_trim(0)
    return True


async def trim_forever(every_s: float) -> None:
    """``trim_heap`` every ``every_s`` seconds: RSS then follows the memory in use instead of
    the high-water mark of the requests in flight (docs/serve.md, Memory)."""
    while True:
        await asyncio.sleep(every_s)
        trim_heap()


def malloc_stats() -> dict[str, float]:
    """glibc's heap: MB in use (small blocks and mmapped ones) and MB free inside its arenas
    (kept, not returned to the system: it counts in RSS); empty where glibc lacks mallinfo2."""
    libc = _libc()
    if libc is None or not hasattr(libc, "mallinfo2"):
        return {}
    libc.mallinfo2.restype = _MallInfo2
    info = libc.mallinfo2()
    return {"malloc_in_use_mb": (info.uordblks + info.hblkhd) / MB, "malloc_free_mb": info.fordblks / MB,
            "malloc_arena_mb": info.arena / MB}


def rss_mb() -> float:
    return psutil.Process().memory_info().rss / MB


def line(start: float, baseline: tracemalloc.Snapshot | None, top: int) -> tuple[dict[str, Any], tracemalloc.Snapshot]:
    """One record, and the snapshot it compared with ``baseline`` (the first one, when None)."""
    snapshot = tracemalloc.take_snapshot().filter_traces([tracemalloc.Filter(False, tracemalloc.__file__)])
    current, peak = tracemalloc.get_traced_memory()
    growth = snapshot.compare_to(baseline, "lineno")[:top] if baseline is not None else []
    record = {"t_s": round(time.monotonic() - start, 1), "rss_mb": rss_mb(), "traced_mb": current / MB,
              "traced_peak_mb": peak / MB, **malloc_stats(),
              "grew_most": [{"where": str(d.traceback[0]), "mb": d.size_diff / MB, "blocks": d.count_diff}
                            for d in growth]}
    return record, snapshot


async def watch(path: Path, every_s: float, top: int = 8) -> None:
    """Append a record to ``path`` every ``every_s`` until cancelled (the service's lifespan)."""
    tracemalloc.start(1)
    start, baseline = time.monotonic(), None
    try:
        while True:
            record, snapshot = await asyncio.to_thread(line, start, baseline, top)
            baseline = baseline or snapshot
            with open(path, "a") as out:
                out.write(json.dumps(record) + "\n")
            await asyncio.sleep(every_s)
    finally:
        tracemalloc.stop()


def trace_target() -> Path | None:
    """Where this service writes its memory trace (``CVTASKS_MEMTRACE``), or None."""
    value = os.environ.get(ENV)
    return Path(value) if value else None


def summary(records: list[dict[str, Any]], skip_s: float) -> dict[str, Any]:
    """From the first record after ``skip_s`` (warm-up) to the last: how much RSS grew, and how
    much of that Python objects, the C heap in use, and free C-heap memory kept in arenas explain."""
    after = [r for r in records if r["t_s"] >= skip_s] or records
    first, last = after[0], after[-1]
    keys = ("rss_mb", "traced_mb", "malloc_in_use_mb", "malloc_free_mb")
    return {"from_s": first["t_s"], "to_s": last["t_s"], "records": len(records),
            **{f"{k.removesuffix('_mb')}_growth_mb": round(last[k] - first[k], 2) for k in keys if k in first},
            "last_rss_mb": round(last["rss_mb"], 1), "grew_most": last["grew_most"]}
