"""Time-to-accuracy of the Fashion classifier: epochs and seconds until the 10k test set reaches
93% and 94% accuracy, training with the settings of params.yaml (the final model's).

    .venv/bin/python bench/fashion_time_to_accuracy.py [--epochs N] [--device cpu]

The test set is scored after every epoch only to measure when the target is crossed (the
model that the report evaluates picks its best epoch on the validation split). Seconds are
cumulative wall time, including that scoring (a few seconds per epoch); they depend on the
machine and on its load: run it on an otherwise idle machine.
"""
from __future__ import annotations

import argparse
import sys
from dataclasses import replace
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch  # noqa: E402

import config  # noqa: E402
from cvtasks import fashion  # noqa: E402

THRESHOLDS = (0.93, 0.94)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--epochs", type=int, default=None, help="default: params.yaml's fashion.epochs")
    parser.add_argument("--device", default=None, help="default: CUDA when present, else the CPU")
    parser.add_argument("--quick", action="store_true", help="quick-mode settings (a smoke run)")
    args = parser.parse_args()
    cfg = config.get("fashion", quick=args.quick)
    if args.epochs:
        cfg = replace(cfg, epochs=args.epochs)
    data = fashion.prepare_data(cfg)
    print(f"{cfg.model} width {cfg.width}, {cfg.epochs} epochs, batch {cfg.batch_size}, "
          f"{len(data.y_train)} training images, {torch.get_num_threads()} torch threads")
    _, history = fashion.train_model(data, cfg, device=args.device, progress=False,
                                     eval_data=(data.x_test, data.y_test))
    reached: dict[float, tuple[int, float]] = {}
    previous = 0.0
    for row in history.epochs:
        print(f"epoch {int(row['epoch'])}: test acc {row['val/acc']:.4f}  {row['seconds'] - previous:.0f} s "
              f"(cumulative {row['seconds']:.0f} s)")
        previous = row["seconds"]
        for t in THRESHOLDS:
            if t not in reached and row["val/acc"] >= t:
                reached[t] = (int(row["epoch"]), row["seconds"])
    for t in THRESHOLDS:
        if t in reached:
            epoch, seconds = reached[t]
            print(f"time-to-{t:.0%}: {epoch} epochs, {seconds:.0f} s")
        else:
            best = max(history.series("val/acc"))
            print(f"time-to-{t:.0%}: not reached in {cfg.epochs} epochs ({history.seconds:.0f} s); best {best:.4f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
