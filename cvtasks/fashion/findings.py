"""The tables and prose of the fashion report, built from a run's metrics (no number typed)."""
from __future__ import annotations

import functools
from collections.abc import Mapping
from typing import Any

import pandas as pd

import config
from cvtasks.prose import ci
from cvtasks.serve.summary import slo_table
from cvtasks.stats import verdict

ci4 = functools.partial(ci, fmt=".4f")   # accuracy-sized figures: four decimals


def targets_table(m: Mapping[str, Any], targets: Mapping[str, float] | None = None) -> pd.DataFrame:
    """Each target, the measured value (with its interval where there is one), the margin and
    whether it is met ("no difference": below the target, but the interval reaches it)."""
    targets = dict(targets or config.FASHION_TARGETS)
    rows = []
    for k, t in targets.items():
        ci = (f"[{m[k + '_ci_low']:.4f}, {m[k + '_ci_high']:.4f}]" if k + "_ci_low" in m else "")
        rows.append((k, t, round(m[k], 4), ci, round(m[k] - t, 4), _verdict(m, k, t)))
    return pd.DataFrame(rows, columns=["metric", "target", "measured", "95 % interval", "margin", "met"]).set_index("metric")


def _verdict(m: Mapping[str, Any], key: str, target: float) -> str:
    return verdict(m[key], target, at_least=True, high=m.get(key + "_ci_high"))


def train_test_table(m: Mapping[str, Any]) -> pd.DataFrame:
    names = ["accuracy", "top3", "macro_f1", "balanced_accuracy", "min_class_precision", "min_class_recall"]
    return pd.DataFrame({split: [m[f"{split}/{n}"] for n in names] for split in ("train", "test")},
                        index=pd.Index(names, name="metric")).round(4)


def summary(m: Mapping[str, Any], run_name: str) -> str:
    lines = [f"**Summary of this run** (`{run_name}`; Fashion-MNIST, {int(m.get('data/test', 0))} test images; "
             "[95 % interval over test images])", ""]
    if "test/accuracy" in m:
        lines.append(f"- Test accuracy {ci4(m, 'test/accuracy')}, top-3 {ci4(m, 'test/top3')}, macro-F1 "
                     f"{ci4(m, 'test/macro_f1')}; worst category precision {ci(m, 'test/min_class_precision')}, "
                     f"recall {ci(m, 'test/min_class_recall')} (Shirt: {ci(m, 'test/shirt/precision')} / "
                     f"{ci(m, 'test/shirt/recall')}).")
    if "study/n_trials" in m:
        lines.append(f"- Study: {int(m['study/n_trials'])} Optuna trials on the 55k / 5k split, the top "
                     f"{int(m['study/top_configs'])} recipes with {int(m['study/seeds_per_top_config'])} seeds each.")
    if "train/seconds" in m:
        lines.append(f"- Final model: {int(m['train/epochs'])} epochs, trained in {m['train/seconds']:.0f} s on "
                     f"{m.get('train/device', 'this machine')}"
                     + ("; this run reused its committed weights (weights/fashion/)." if m.get("train/reused")
                        else "; trained by this run."))
    return "\n".join(lines)


def conclusions(m: Mapping[str, Any], cfg: Any, service: Mapping[str, Any] | None = None) -> str:
    out = ["## Conclusions", "", "Every figure below is read from this run's metrics (intervals: 95 %, bootstrap over "
           "the 10k test images, which the run reads once).", ""]
    if "test/accuracy" in m:
        t = config.FASHION_TARGETS
        met = {k: _verdict(m, k, v) for k, v in t.items()}
        level, missed = ([k for k, v in met.items() if v == word] for word in ("no difference", "NO"))
        out.append(f"- **Targets**: accuracy {ci4(m, 'test/accuracy')} (target {t['test/accuracy']}), top-3 "
                   f"{ci4(m, 'test/top3')} ({t['test/top3']}), macro-F1 {ci4(m, 'test/macro_f1')} ({t['test/macro_f1']}), "
                   f"worst category precision {ci4(m, 'test/min_class_precision')} and recall {ci4(m, 'test/min_class_recall')} "
                   f"({t['test/min_class_precision']}). " + ("All met." if not missed + level else "")
                   + ("" if not level else "Below the target, but each interval holds the target (no difference): "
                      + ", ".join(f"{k} by {t[k] - m[k]:.4f}" for k in level) + ". ")
                   + ("" if not missed else "Missed: " + ", ".join(f"{k} by {t[k] - m[k]:.4f}" for k in missed) + "."))
        out.append(f"- **Shirt**, the hard category: precision {ci(m, 'test/shirt/precision')}, recall "
                   f"{ci(m, 'test/shirt/recall')}; "
                   "the shirts it misses go to " + ", ".join(
                       f"{m[f'test/shirt/confused_{r}']} ({m[f'test/shirt/confused_{r}_share']:.0%})"
                       for r in (1, 2, 3) if f"test/shirt/confused_{r}" in m)
                   + " (the table above): look-alike silhouettes at 28 x 28 pixels."
                   + (f" Across the study's trials, Shirt recall and validation accuracy have a Spearman correlation "
                      f"of {m['study/shirt_recall_vs_accuracy_spearman']:.2f} (figure above)."
                      if "study/shirt_recall_vs_accuracy_spearman" in m else ""))
    if "study/n_trials" in m:
        out.append(f"- **The study**: {int(m['study/n_trials'])} trials ({int(m['study/pruned'])} pruned) of "
                   f"{cfg.study_epochs} epochs each on the 55k / 5k split; the best recipe over "
                   f"{int(m['study/seeds_per_top_config'])} seeds reaches validation accuracy "
                   f"{m['study/best_val_acc_mean']:.4f} (sd {m['study/best_val_acc_std']:.4f}). The final recipe in "
                   "config.py is the study's winner" + (f" but for its {m['study/config_differs_in']} (the table above)"
                   if m.get("study/config_differs_in") else "") +
                   f", trained for {int(m.get('train/epochs', 0))} epochs instead of {cfg.study_epochs}: a short "
                   "study favours what learns fast, which is not always what ends highest.")
    if "train/val_acc" in m:
        others = sorted({k.split("/")[1] for k in m if k.startswith("schedules/") and k.endswith("/minus_final")})

        def versus(name: str) -> str:
            key = f"schedules/{name}/minus_final"
            same = m[key + "_ci_low"] <= 0 <= m[key + "_ci_high"]
            return (f"`{name}` {m[f'schedules/{name}/val_acc']:.4f} (minus the final recipe: "
                    f"{ci(m, key, '+.4f')}{', no difference' if same else ''})")

        out.append(f"- **At the full schedule, on validation** (paired over the {int(m.get('data/val', 0))} validation "
                   f"images): the final recipe reaches {m['train/val_acc']:.4f}"
                   + (f" (over {int(m['train/seeds'])} seeds, each with its own validation draw: mean "
                      f"{m['train/val_acc_seeds_mean']:.4f}, from {m['train/val_acc_seeds_min']:.4f} to "
                      f"{m['train/val_acc_seeds_max']:.4f})" if m.get("train/seeds", 0) > 1 else "")
                   + (("; the other recipes in schedules.json (epochs in the table): "
                       + ", ".join(versus(n) for n in others)) if others else "")
                   + ". The rules, fixed before the long-schedule results (config.FASHION_CANDIDATES): the candidate "
                   "with the best mean validation accuracy over its seeds replaces the recipe only when the interval "
                   "of its paired gain lies above 0; a wider network (more CPU per served image, "
                   "bench/fashion_width_cost.py) replaces a narrower one only on the same condition. Test-time flip, "
                   f"which doubles the inference, likewise: it changes the final model's validation accuracy by "
                   f"{ci4(m, 'train/val_flip_gain')}, so it is " + ("adopted." if cfg.tta_flip else "not adopted."))
    if "train/offset/value" in m:
        raised = m["train/offset/value"] > 0
        out.append(f"- **{m['train/offset/class']}'s logit offset** (the class with the lowest validation recall; "
                   "rule in config.FASHION_OFFSET_GRID, fixed before its result): "
                   + (f"+{m['train/offset/value']:.2f} on its logit raises the validation minimum of per-class "
                      f"precision and recall from {m['train/offset/val_min_pr_before']:.3f} to "
                      f"{m['train/offset/val_min_pr_after']:.3f}; the served model and the test figures above carry it."
                      if raised else "no offset on the grid raises the validation minimum of per-class precision "
                      f"and recall ({m['train/offset/val_min_pr_before']:.3f}), so none is applied."))
    if "train/seconds" in m:
        budget = config.FASHION_TRAIN_BUDGET_S
        where = m.get("train/device", "this machine")
        line = (f"- **Training time**: {m['train/seconds']:.0f} s on {where} "
                f"({'within' if m['train/seconds'] <= budget else 'over'} the {budget / 60:.0f}-minute budget)")
        if "train/cpu_retrain_hours" in m:
            line += (f"; a retrain on a 2-core CPU (`python -m cvtasks run fashion --retrain`) takes about "
                     f"{m['train/cpu_retrain_hours']:.1f} h ({m['train/cpu_epoch_seconds']:.0f} s per epoch measured "
                     "by bench/fashion_epoch_cost.py), over the budget; on a GPU the same command takes minutes")
        out.append(line + ".")
    if "export/int8_accuracy_drop_points" in m:
        drop = m["export/int8_accuracy_drop_points"]
        out.append(f"- **Production**: ONNX matches PyTorch to {m['export/onnx_max_abs_diff']:.1e}; INT8 "
                   + (f"loses {drop:.2f}" if drop > 0 else f"gains {-drop:.2f}")
                   + f" accuracy points against FP32 (test accuracy {m['export/int8_test_accuracy']:.4f} against "
                   f"{m['export/fp32_test_accuracy']:.4f}) at {m['export/int8_mb']:.2f} MB.")
    if service and "bench_serve" in service:
        table = slo_table(service["bench_serve"], service.get("soak"))
        missed, level = (table.index[table["met"] == word].tolist() for word in ("NO", "no difference"))
        soak = service.get("soak") or {}
        out.append(f"- **The service** (load test of commit {service['bench_serve'].get('git_commit')}"
                   + (f", soak of {soak['git_commit']}" if "git_commit" in soak else "") + "): "
                   f"{(table['met'] == 'yes').sum()} of {(table['met'] != '-').sum()} targets met"
                   + ("" if not level else "; above the target but not distinguishable from it within the "
                      "spread of the measurement: " + "; ".join(level))
                   + ("." if not missed else "; missed: " + "; ".join(missed) + ".")
                   + " Client and server shared the two cores.")
    return "\n".join(out)
