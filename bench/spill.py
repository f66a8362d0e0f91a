"""Time the spill study: wall-clock and CPU seconds of run(cfg), quick and full.

    python bench/spill.py [--full]

Prints the time of each step. CPU seconds (process time, all threads) are shown next to the
wall-clock time because on a shared machine the wall-clock time is inflated by other work;
the issue's budget is 6 minutes (full notebook) and 1 minute (quick) on an uncontended 2-core CPU.
"""
from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.setdefault("CVTASKS_WANDB", "disabled")

import config  # noqa: E402
from cvtasks import spill  # noqa: E402


def timed(label: str, fn, *args, **kwargs):
    wall, cpu = time.perf_counter(), time.process_time()
    out = fn(*args, **kwargs)
    print(f"{label:<28} wall {time.perf_counter() - wall:7.1f} s   cpu {time.process_time() - cpu:7.1f} s", flush=True)
    return out


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--full", action="store_true", help="full settings (default: quick)")
    args = parser.parse_args()
    cfg = config.get("spill", quick=not args.full)
    print(f"spill study, {'full' if args.full else 'quick'} settings, {os.cpu_count()} CPUs, "
          f"load average {os.getloadavg()[0]:.1f}")
    start_wall, start_cpu = time.perf_counter(), time.process_time()
    study = timed("data (cached after 1st run)", spill.prepare, cfg)
    timed("autoencoder", spill.fit_autoencoder, study)
    timed("baselines", spill.fit_baselines, study)
    timed("evaluate", spill.evaluate_all, study)
    timed("experiments", spill.run_experiments, study.data.images, study.data.labels, study.split, cfg,
          epochs=cfg.experiment_epochs)
    print(f"{'total':<28} wall {time.perf_counter() - start_wall:7.1f} s   cpu {time.process_time() - start_cpu:7.1f} s")


if __name__ == "__main__":
    main()
