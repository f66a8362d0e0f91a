"""CPU seconds per training epoch of the fashion recipes, measured on this machine, for the
time-to-accuracy plot of runs trained on a GPU and for "a retrain takes N hours here".

A full 100-epoch CPU training of the long-schedule recipes takes hours on 2 cores; the cost of
one epoch does not depend on where in the schedule it falls, so this trains each recipe in
reports/fashion/schedules.json that ran on a GPU for one epoch on ``--images`` training images
(the package's own train_model: the same batches, augmentation, optimiser and precision) and
scales to the full training set. It writes ``cpu_epoch_seconds`` and ``cpu_epoch_measured_on``
into those entries. On an otherwise idle machine:

    python bench/fashion_epoch_cost.py [--images 5120]
"""
from __future__ import annotations

import argparse
import json
from dataclasses import replace

import torch

import config
from cvtasks.fashion import schedules
from cvtasks.fashion.data import prepare_data
from cvtasks.fashion.training import train_model
from cvtasks.models.fashion_classifier import TRAINING_FIELDS
from cvtasks.provenance import cpu_name, on_gpu


def epoch_seconds(recipe: dict, images: int, data) -> float:
    """Seconds of one training epoch of ``recipe`` on the full training set, on the CPU."""
    cfg = replace(config.FashionConfig(), **{**{f: recipe[f] for f in TRAINING_FIELDS}, "epochs": 1})
    small = data.subset(images, 500, cfg.seed)
    train_model(small, cfg, device="cpu")   # warm-up: kernels chosen, memory allocated
    history = train_model(small, cfg, device="cpu")[1]
    return history.seconds * cfg.train_size / images


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=5120, help="training images timed per recipe")
    args = parser.parse_args()
    cfg = config.FashionConfig()
    path = schedules.path_of(cfg)
    entries = schedules.load(path)
    data = prepare_data(cfg)
    where = f"{cpu_name()}, {torch.get_num_threads()} threads"
    costs: dict[str, float] = {}
    for key, e in entries.items():
        if not on_gpu(e["cpu"]):
            continue
        recipe = {**e["recipe"], "seed": cfg.seed}   # the seed does not change the cost
        name = json.dumps(recipe, sort_keys=True)
        if name not in costs:
            costs[name] = epoch_seconds(recipe, args.images, data)
            print(f"{key} ({recipe['batch_size']} a batch, augment={recipe['augment']}): "
                  f"{costs[name]:.0f} s per epoch; {recipe['epochs']} epochs = {costs[name] * recipe['epochs'] / 3600:.2f} h")
        e["cpu_epoch_seconds"], e["cpu_epoch_measured_on"] = round(costs[name], 1), where
    schedules.save(path, entries)
    print(f"wrote {path} ({where})")


if __name__ == "__main__":
    main()
