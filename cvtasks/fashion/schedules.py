"""Full-schedule runs of fashion recipes, kept so that the final recipe is compared with the ones
it replaced on validation, without retraining them in every report.

The study ranks recipes after a few epochs; what a recipe reaches at the final schedule is
another question, and one full training costs up to an hour on a 2-core CPU without AMX. So
every full-schedule training the report makes leaves an entry in reports/fashion/schedules.json,
keyed by its training key: the recipe, the validation history (for the time-to-accuracy curve),
where it ran, and its predictions on the validation images, plain and averaged with their mirror
images. The comparison is a paired bootstrap over those same validation images; the test set is
never part of it.
"""
from __future__ import annotations

import json
from collections import Counter
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from torch import nn

import config
from cvtasks.cache import fingerprint
from cvtasks.fashion.data import FashionData, prepare_data
from cvtasks.fashion.training import predict_proba
from cvtasks.io import atomic_write_text, metrics_path
from cvtasks.models.fashion_classifier import TRAINING_FIELDS, load_classifier
from cvtasks.provenance import cpu_name, on_gpu, utc_now
from cvtasks.stats import Interval, mean_interval, paired_difference


def path_of(cfg: config.FashionConfig) -> Path:
    return metrics_path("fashion", cfg.quick, name="schedules", reports_dir=cfg.paths.reports)


def entry_key(meta: Mapping[str, Any]) -> str:
    """An entry's key: the training key and the kind of device it trained on (one recipe trained
    on a CPU and on a GPU gives two runs; checkpoints without a device stamp predate GPU runs)."""
    return f"{meta['training_key']}@{'cuda' if on_gpu(meta.get('device', '')) else 'cpu'}"


def entry(model: nn.Module, meta: Mapping[str, Any], data: FashionData, device: Any = None) -> dict[str, Any]:
    """What the comparison needs of one trained recipe: its validation predictions (plain and
    with test-time flip), its history, and where it ran."""
    plain, flip = (predict_proba(model, data.x_val, meta["mean"], meta["std"], tta_flip=t, device=device).argmax(1)
                   for t in (False, True))
    return {"recipe": {f: meta["config"][f] for f in TRAINING_FIELDS}, "history": list(meta["history"]),
            "best_epoch": int(meta["best_epoch"]), "train_seconds": float(meta["train_seconds"]),
            "cpu": meta.get("device") or cpu_name(), "date_utc": utc_now(),
            "val_labels": fingerprint(np.asarray(data.y_val).tolist()),
            "val_pred": plain.tolist(), "val_pred_flip": flip.tolist()}


def load(path: Path) -> dict[str, dict[str, Any]]:
    return json.loads(path.read_text()) if path.exists() else {}


def save(path: Path, entries: Mapping[str, Mapping[str, Any]]) -> None:
    atomic_write_text(path, json.dumps(entries, indent=1, sort_keys=True) + "\n")


def record(path: Path, key: str, item: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    """Add (or replace) one recipe's entry; the others are kept."""
    entries = load(path)
    entries[key] = dict(item)
    save(path, entries)
    return entries


def add(checkpoint: str | Path) -> str:
    """Add a checkpoint trained elsewhere (``train fashion --out DIR``, on a GPU, say) to its
    recipe's schedules.json: its validation predictions on the hold-out its seed draws here."""
    model, meta = load_classifier(checkpoint, offset=False)
    cfg = config.FashionConfig(**{f: meta["config"][f] for f in TRAINING_FIELDS})
    key = entry_key(meta)
    record(path_of(cfg), key, entry(model, meta, prepare_data(cfg)))
    return key


def comparable(entries: Mapping[str, Mapping[str, Any]], final_key: str) -> dict[str, Mapping[str, Any]]:
    """The entries scored on the final recipe's validation images (same labels, same split)."""
    final = entries[final_key]
    return {k: e for k, e in entries.items() if e["val_labels"] == final["val_labels"]
            and all(e["recipe"][f] == final["recipe"][f] for f in ("seed", "train_size", "val_size"))}


def _pred(e: Mapping[str, Any], flip: bool) -> np.ndarray:
    return np.asarray(e["val_pred_flip" if flip else "val_pred"])


def _correct(e: Mapping[str, Any], y: np.ndarray, flip: bool) -> np.ndarray:
    """1.0 where the entry's validation prediction is right, else 0.0."""
    return (_pred(e, flip) == y).astype(float)


def flip_gain(e: Mapping[str, Any], y: np.ndarray, *, count: int, seed: int) -> Interval:
    """Validation accuracy with test-time flip minus without, paired over validation images."""
    a, b = _correct(e, y, True), _correct(e, y, False)
    return paired_difference(lambda r: a[r].mean(), lambda r: b[r].mean(), len(y), count=count, seed=seed)


def label(recipe: Mapping[str, Any], final: Mapping[str, Any], skip: tuple[str, ...] = ()) -> str:
    """A recipe named by what differs from the final one (``skip``: fields left out of the name)."""
    diff = [f"{f}={recipe[f]}" for f in TRAINING_FIELDS if f not in skip and recipe[f] != final[f]]
    return "final recipe" if not diff else ", ".join(diff)


def _device_kind(e: Mapping[str, Any]) -> str:
    return "GPU" if on_gpu(e["cpu"]) else "CPU"


def names(entries: Mapping[str, Mapping[str, Any]], final_key: str) -> dict[str, str]:
    """Each comparable entry's label; where one recipe ran on a CPU and a GPU, the device is added."""
    final = entries[final_key]["recipe"]
    chosen = comparable(entries, final_key)
    plain = {k: label(e["recipe"], final) for k, e in chosen.items()}
    twice = {n for n, c in Counter(plain.values()).items() if c > 1}
    return {k: f"{n} ({_device_kind(chosen[k])})" if n in twice else n for k, n in plain.items()}


def comparison(entries: Mapping[str, Mapping[str, Any]], final_key: str, y: np.ndarray, classes: list[str], *,
               tta_flip: bool, count: int, seed: int) -> pd.DataFrame:
    """Every comparable recipe on the validation images (scored as the final model is served,
    with or without test-time flip): accuracy with its interval, Shirt precision and recall, the paired
    difference from the final recipe, its training time and where it ran."""
    shirt = classes.index("Shirt")
    final = entries[final_key]
    mine = _correct(final, y, tta_flip)
    rows = []
    for key, name in names(entries, final_key).items():
        e = entries[key]
        ok, pred = _correct(e, y, tta_flip), _pred(e, tta_flip)
        acc = mean_interval(ok, count=count, seed=seed)
        diff = paired_difference(lambda r: ok[r].mean(), lambda r: mine[r].mean(), len(y), count=count, seed=seed)
        rows.append({"recipe": name, "val_acc": acc.value,
                     "val_acc_low": acc.low, "val_acc_high": acc.high, "minus_final": diff.value,
                     "minus_final_low": diff.low, "minus_final_high": diff.high,
                     "shirt_precision": float(ok[pred == shirt].mean()) if (pred == shirt).any() else 0.0,
                     "shirt_recall": float(ok[y == shirt].mean()), "best_epoch": e["best_epoch"],
                     "epochs": e["recipe"]["epochs"], "train_seconds": round(e["train_seconds"]),
                     "cpu": e["cpu"], "key": key})
    return pd.DataFrame(rows).set_index("recipe").sort_values("val_acc", ascending=False)


def curves(entries: Mapping[str, Mapping[str, Any]], final_key: str) -> dict[str, pd.DataFrame]:
    """Validation accuracy per epoch of every comparable recipe, for the time-to-accuracy plot:
    ``seconds`` as trained (on its own device) and ``cpu_seconds``, on a CPU: the seconds of a
    CPU run, or for a GPU run its epochs times the CPU seconds per epoch measured for that recipe
    (``cpu_epoch_seconds``, bench/fashion_epoch_cost.py), when measured."""
    out = {}
    for key, name in names(entries, final_key).items():
        e = entries[key]
        frame = pd.DataFrame(e["history"])
        if _device_kind(e) == "CPU":
            frame["cpu_seconds"], frame["cpu_estimated"] = frame["seconds"], False
        elif e.get("cpu_epoch_seconds"):
            frame["cpu_seconds"], frame["cpu_estimated"] = frame["epoch"] * e["cpu_epoch_seconds"], True
        out[name] = frame
    return out


def spread_label(e: Mapping[str, Any], final: Mapping[str, Any]) -> str:
    """An entry's row in ``seed_spread``: its recipe but for the seed, and where it ran."""
    return f"{label(e['recipe'], final, skip=('seed',))} ({_device_kind(e)})"


def seed_spread(entries: Mapping[str, Mapping[str, Any]], final_key: str) -> pd.DataFrame:
    """Each recipe over its seeds (each seed draws its own validation hold-out, so the spread
    includes the split): runs, mean, lowest and highest validation accuracy at the kept epoch."""
    final = entries[final_key]["recipe"]
    rows = []
    for e in entries.values():
        r = e["recipe"]
        if r["train_size"] != final["train_size"] or r["val_size"] != final["val_size"]:
            continue
        rows.append({"recipe": spread_label(e, final), "seed": r["seed"], "val_acc": e["history"][e["best_epoch"] - 1]["val/acc"]})
    table = pd.DataFrame(rows).groupby("recipe").val_acc.agg(seeds="count", val_acc_mean="mean", val_acc_min="min",
                                                                 val_acc_max="max")
    return table.sort_values("val_acc_mean", ascending=False)
