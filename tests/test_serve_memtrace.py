"""The service's memory trace (bench memory): records over time and what they say grew."""
import asyncio
import json

import numpy as np

from cvtasks.serve import memtrace


def test_the_trace_names_the_line_whose_arrays_grew(tmp_path):
    path = tmp_path / "trace.jsonl"
    held = []

    async def run():
        watcher = asyncio.create_task(memtrace.watch(path, every_s=0.2))
        for _ in range(6):
            held.append(np.ones(250_000))   # 2 MB a step, kept: what the trace must find
            await asyncio.sleep(0.15)
        watcher.cancel()
        try:
            await watcher
        except asyncio.CancelledError:
            pass

    asyncio.run(run())
    records = [json.loads(line) for line in path.read_text().splitlines()]
    assert len(records) >= 3 and records[0]["grew_most"] == []
    assert records[-1]["traced_mb"] > records[0]["traced_mb"] + 4
    top = records[-1]["grew_most"][0]
    assert top["mb"] > 4 and "numpy" in top["where"]
    growth = memtrace.summary(records, skip_s=0.0)
    assert growth["records"] == len(records) and growth["traced_growth_mb"] > 4
    assert growth["rss_growth_mb"] == round(records[-1]["rss_mb"] - records[0]["rss_mb"], 2)
    if "malloc_in_use_mb" in records[0]:   # glibc: the C heap's view is there too
        assert records[0]["malloc_in_use_mb"] > 0 and records[0]["malloc_free_mb"] >= 0


def test_summary_starts_after_the_warm_up():
    records = [{"t_s": t, "rss_mb": 100 + t, "traced_mb": 1.0, "grew_most": []} for t in (0, 30, 60, 90)]
    growth = memtrace.summary(records, skip_s=60)
    assert growth["from_s"] == 60 and growth["rss_growth_mb"] == 30 and growth["traced_growth_mb"] == 0


def test_the_mmap_threshold_is_set_where_glibc_is_and_left_alone_at_0():
    import subprocess
    import sys

    probe = ("from cvtasks.serve import memtrace; import sys; "
             "print(memtrace.set_mmap_threshold(int(sys.argv[1])), bool(memtrace.malloc_stats()))")
    out = {n: subprocess.run([sys.executable, "-c", probe, str(n)], capture_output=True, text=True, check=True)
           .stdout.split() for n in (0, 131072)}
    assert out[0][0] == "False"                    # 0: glibc's own adaptive default
    if out[131072][1] == "True":                   # glibc (mallinfo2 answers): the setting takes
        assert out[131072][0] == "True"


def test_trimming_hands_freed_memory_back_to_the_system():
    """200 MB of C-heap blocks freed below one that stays: glibc keeps them (RSS stays up) until
    ``trim_heap``, which the service calls every ``malloc_trim_every_s``."""
    import subprocess
    import sys

    probe = ("import gc, psutil; from cvtasks.serve import memtrace; p = psutil.Process(); "
             "blocks = [bytes(2048) for _ in range(100_000)]; keep = blocks[-1]; del blocks; gc.collect(); "
             "before = p.memory_info().rss; ok = memtrace.trim_heap(); "
             "print(ok, (before - p.memory_info().rss) / 2**20)")
    ok, freed_mb = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True,
                                  check=True).stdout.split()
    if ok == "True":   # glibc
        assert float(freed_mb) > 100
