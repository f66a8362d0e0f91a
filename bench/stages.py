"""Wall-clock and CPU seconds of every stage of a task, on this machine.

    python bench/stages.py <brands|styles|spill|search|fashion> [--quick] [--out DIR]

Runs the task's stages in order (the same code as ``python -m cvtasks run <task>``), W&B off,
results written under ``--out`` (default: a temporary folder, so the committed reports stay the
full run's). CPU seconds (this process, all threads) are printed beside the wall-clock time: on
a shared machine wall-clock time is inflated by other work; the budgets in docs/ are for an
otherwise idle 2-core CPU. Caches under data/cache are used as a normal run would.
"""
from __future__ import annotations

import argparse
import dataclasses
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ["CVTASKS_WANDB"] = "disabled"

import config  # noqa: E402
from cvtasks.registry import TASK_CLASSES, task_class  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("task", choices=list(TASK_CLASSES))
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--out", type=Path, help="where reports and models go (default: a temporary folder)")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = args.out or Path(tmp)
        cfg = config.get(args.task, quick=args.quick)
        cfg = dataclasses.replace(cfg, paths=config.Paths.under(root, cache=cfg.paths.cache))
        task = task_class(args.task)(cfg, caller="cli")
        total_wall, total_cpu = time.perf_counter(), time.process_time()
        for name in task.stages:
            wall, cpu = time.perf_counter(), time.process_time()
            getattr(task, name)()
            print(f"{name:<24} wall {time.perf_counter() - wall:7.1f} s   cpu {time.process_time() - cpu:7.1f} s",
                  flush=True)
        task.finish()
        print(f"{'total':<24} wall {time.perf_counter() - total_wall:7.1f} s   "
              f"cpu {time.process_time() - total_cpu:7.1f} s")


if __name__ == "__main__":
    main()
