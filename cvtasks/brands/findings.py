"""The tables and prose of the brands report, built from a run's metrics (no number typed)."""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import pandas as pd

from cvtasks.prose import ci

NAMES = {"frozen": "frozen backbone + our head", "finetuned": "last block fine-tuned", "small_cnn": "small CNN",
         "baseline": "colour histogram + LR"}


def comparison(m: Mapping[str, float], models: Sequence[str]) -> pd.DataFrame:
    """One row per model: macro-F1 on each split (each measured on its own rows), test accuracy,
    the worst brand's recall, and the test macro-F1 interval."""
    rows = {}
    for name in models:
        key = f"{name}/test/macro_f1"
        rows[NAMES.get(name, name)] = {
            "train macro-F1": m.get(f"{name}/train/macro_f1"), "val macro-F1": m.get(f"{name}/val/macro_f1"),
            "test macro-F1": m.get(key), "95 % interval": f"[{m[key + '_ci_low']:.3f}, {m[key + '_ci_high']:.3f}]"
            if key + "_ci_low" in m else "", "test accuracy": m.get(f"{name}/test/accuracy"),
            "test worst-brand recall": m.get(f"{name}/test/min_class_recall")}
    return pd.DataFrame.from_dict(rows, orient="index").round(3)   # by row: each column keeps its dtype


def summary(m: Mapping[str, Any], run_name: str) -> str:
    lines = [f"**Summary of this run** (`{run_name}`; {int(m.get('data/n_images', 0))} generated photos of "
             f"{int(m.get('data/n_models', 0))} product models, {int(m.get('test/n_models', 0))} of them in test; "
             "means over training seeds [95 % interval over product models and seeds])", ""]
    if "test/macro_f1" in m:
        chosen = "fine-tuned" if m.get("transfer/finetuned_selected") else "frozen"
        lines.append(f"- Transfer model (chosen on validation: {chosen}), test macro-F1 {ci(m, 'test/macro_f1')}; "
                     f"small CNN {ci(m, 'small_cnn/test/macro_f1')}; colour baseline {ci(m, 'baseline/test/macro_f1')}.")
    if "al/labels_to_95pct_median" in m:
        random = m.get("al/random/labels_to_95pct_median")
        random = f"{random:.0f}" if random is not None else (
            f"reached in {int(m.get('al/random/reached', 0))} of {int(m['al/seeds'])} seeds within "
            f"{int(m['al/labels_budget'])}")
        lines.append(f"- Active learning (judged on validation, {int(m['al/seeds'])} seeds): `{m['al/chosen']}` reaches "
                     f"95 % of the fully labelled accuracy with a median of {m['al/labels_to_95pct_median']:.0f} of "
                     f"{int(m['al/pool_size'])} pool labels (random: {random}).")
    if "autolabel/flag_precision" in m:
        lines.append(f"- Confident learning found the injected wrong labels with precision "
                     f"{m['autolabel/flag_precision']:.2f} and recall {m['autolabel/flag_recall']:.2f}.")
    return "\n".join(lines)


def conclusions(m: Mapping[str, Any], cfg: Any) -> str:
    out = ["## Conclusions", "", f"Every figure below is read from this run's metrics: means over {cfg.seeds} training "
           "seeds, 95 % intervals from a bootstrap over product models (and seeds). The photos are *generated* "
           "by our chandelier generator, not taken by a camera.", ""]
    if "test/macro_f1" in m:
        chosen = "fine-tuned" if m.get("transfer/finetuned_selected") else "frozen"
        ok = m["test/macro_f1"] >= 0.90 and m["test/macro_f1_ci_low"] >= 0.80
        out.append(f"- **Transfer learning** (the {chosen} model, chosen on validation): test macro-F1 "
                   f"{ci(m, 'test/macro_f1')} on {int(m['test/n_models'])} product models no training photo shows "
                   f"(target >= 0.90 with the interval above 0.80: {'met' if ok else 'missed'}).")
    if "finetuned_minus_frozen/test/macro_f1" in m:
        d = m["finetuned_minus_frozen/test/macro_f1"]
        lo, hi = m["finetuned_minus_frozen/test/macro_f1_ci_low"], m["finetuned_minus_frozen/test/macro_f1_ci_high"]
        verdict = "no difference (the interval holds 0)" if lo <= 0 <= hi else ("fine-tuning helps" if d > 0
                                                                                 else "fine-tuning hurts")
        out.append(f"- **Fine-tuned against frozen**, paired on the same resampled models: {d:+.3f} "
                   f"[{lo:+.3f}, {hi:+.3f}]: {verdict}.")
    if "small_cnn/test/macro_f1" in m:
        out.append(f"- **The small CNN from scratch** reaches {ci(m, 'small_cnn/test/macro_f1')}: it has to learn "
                   "from the training photos alone what the pretrained backbone brings from ImageNet. **Colour alone** "
                   f"gives {ci(m, 'baseline/test/macro_f1')} (validation {m.get('baseline/val/macro_f1', float('nan')):.3f}, "
                   f"train {m.get('baseline/train/macro_f1', float('nan')):.3f}): finishes and backgrounds are shared "
                   "across brands, so the task is not a colour task.")
    if "imbalance/weighted_macro_f1" in m:
        out.append(f"- **Class imbalance**: class weights give macro-F1 {m['imbalance/weighted_macro_f1']:.3f} and "
                   f"worst-brand recall {m['imbalance/weighted_min_class_recall']:.3f}, against "
                   f"{m['imbalance/unweighted_macro_f1']:.3f} and {m['imbalance/unweighted_min_class_recall']:.3f} "
                   "without.")
    if "embed/silhouette_after" in m:
        out.append(f"- **Embeddings**: the brands' silhouette in the head's penultimate layer rises from "
                   f"{ci(m, 'embed/silhouette_before')} before training to {ci(m, 'embed/silhouette_after')} after.")
    if "al/labels_to_95pct_median" in m:
        rows = ", ".join(f"{s} {m[f'al/{s}/labels_to_95pct_median']:.0f}" if f"al/{s}/labels_to_95pct_median" in m
                         else f"{s} not reached in most sessions ({int(m.get(f'al/{s}/reached', 0))} of "
                              f"{int(m['al/seeds'])} within {int(m['al/labels_budget'])})" for s in cfg.al_strategies)
        out.append(f"- **Active learning**, judged on validation over {int(m['al/seeds'])} seeds: median labels to "
                   f"95 % of the fully labelled accuracy: {rows} (of {int(m['al/pool_size'])}). The strategy chosen "
                   f"there, `{m['al/chosen']}`, tested once: {m.get('al/test/accuracy_at_budget', float('nan')):.3f} "
                   f"test accuracy at its median budget against {m.get('al/test/full_accuracy', float('nan')):.3f} "
                   "with every pool label. The curves' bands show how much one session's luck moves these counts.")
    if "autolabel/flag_precision" in m:
        out.append(f"- **Auto-labelling with wrong labels in the pool**: {m['autolabel/noise_rate']:.0%} of the pool's "
                   f"labels were made wrong, {cfg.autolabel_lookalike:.0%} of them towards each brand's look-alike. "
                   f"cleanlab flagged {int(m['autolabel/flagged'])} labels with precision "
                   f"{m['autolabel/flag_precision']:.2f} and recall {m['autolabel/flag_recall']:.2f}. Trained on the "
                   f"labels it keeps, the classifier auto-labels {m['autolabel/coverage']:.0%} of the pool at "
                   f"p >= {cfg.autolabel_threshold} with accuracy {m['autolabel/accuracy']:.3f}; the coverage curve "
                   "shows the trade-off a labeller picks from.")
    return "\n".join(out)
