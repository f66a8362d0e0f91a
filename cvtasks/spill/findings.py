"""The prose of the spill report, built from a run's metrics (no number is typed by hand)."""
from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from cvtasks.data.wells import SHIFT_LIGHTING, VAL_SHIFT_LIGHTING
from cvtasks.prose import ci
from cvtasks.spill.scores import LOCAL_SCORES

# The study the task comes from, as its report gives it (real plant photos, its own labels).
ORIGINAL_STUDY = {"tpr": 0.97, "tnr": 0.02}


def policy_name(key: str) -> str:
    """A threshold policy's metric key in words: youden, fixed_fpr_<p>, fpr_bound_<p>_at_<c>."""
    parts = key.split("_")
    if key == "youden":
        return "Youden's J"
    if key.startswith("fixed_fpr_"):
        return f"a {parts[2]} % false-alarm rate on validation"
    if key.startswith("fpr_bound_"):
        return f"a {parts[2]} % false-alarm bound held with {parts[4]} % confidence"
    return key.replace("_", " ")


def summary(m: Mapping[str, float], run_name: str) -> str:
    lines = [f"**Summary of this run** (`{run_name}`; {int(m.get('data/n_images', 0))} images, "
             f"{int(m.get('seeds', 0))} training seeds per detector; mean over seeds [95 % interval])", ""]
    if "test/roc_auc_mean" in m:
        lines.append(f"- Autoencoder, test: ROC-AUC {ci(m, 'test/roc_auc_mean')}, TPR {ci(m, 'test/tpr_mean')}, "
                     f"TNR {ci(m, 'test/tnr_mean')} at the threshold chosen on validation.")
    if "supervised/test/roc_auc_mean" in m:
        lines.append(f"- Baselines, test ROC-AUC: supervised CNN {ci(m, 'supervised/test/roc_auc_mean')}, anomalib "
                     f"PatchCore {ci(m, 'anomalib/patchcore/test/roc_auc_mean')}, PaDiM "
                     f"{ci(m, 'anomalib/padim/test/roc_auc_mean')}.")
    if "lighting_shift/test/tnr" in m:
        lines.append(f"- Under lighting no training image had: TNR {ci(m, 'lighting_shift/test/tnr')}, "
                     f"TPR {ci(m, 'lighting_shift/test/tpr')} (validation set under other new lighting: TNR "
                     f"{ci(m, 'lighting_shift/val/tnr')}).")
    return "\n".join(lines)


def _worst_seed(m: Mapping[str, float], prefix: str) -> str:
    """The worst seed's false alarms and its exact TNR bound, which a bootstrap at TNR 1 cannot give."""
    if f"{prefix}/worst_seed_tnr_low" not in m:
        return ""
    return (f"the worst seed flags {int(m[f'{prefix}/worst_seed_false_alarms'])} of "
            f"{int(m[f'{prefix}/n_normal'])} normal images, so its TNR is >= "
            f"{m[f'{prefix}/worst_seed_tnr_low']:.3f} with 95 % confidence (Clopper-Pearson)")


def _verdict(ok: bool) -> str:
    return "**met**" if ok else "**missed**"


def conclusions(m: Mapping[str, float], cfg: Any) -> str:
    out = ["## Conclusions", "", "Every figure below is read from this run's metrics: means over "
           f"{int(m.get('seeds', 0))} training seeds with 95 % intervals (seeds and test images resampled).", ""]
    if "test/roc_auc_mean" in m:
        auc_ok = m["test/roc_auc_mean"] >= 0.98 and m["test/roc_auc_mean_ci_low"] >= 0.95
        rate_ok = m["test/tpr_mean"] >= 0.95 and m["test/tnr_mean"] >= 0.95
        out.append(f"- **Targets.** ROC-AUC mean >= 0.98 with the interval's low end >= 0.95: {_verdict(auc_ok)} "
                   f"({ci(m, 'test/roc_auc_mean')}). TPR and TNR means >= 0.95 at the validation threshold: "
                   f"{_verdict(rate_ok)} (TPR {ci(m, 'test/tpr_mean')}, TNR {ci(m, 'test/tnr_mean')}).")
    scores = [(k, f"ae_{k}/test/roc_auc_mean") for k in ("mse", "l1", "pooled", "excess", "emission", "glow")
              if k != cfg.score]
    if all(key in m for _, key in scores):
        listed = ", ".join(f"{name} {m[key]:.3f}" for name, key in scores)
        out.append("- **The score matters more than the architecture.** From the same reconstructions (test "
                   f"ROC-AUC): {listed}, and the chosen `{cfg.score}` {m['test/roc_auc_mean']:.3f}. A global mean is "
                   "diluted by a small spill and raised by texture and smoke everywhere; the local maximum finds the spill; "
                   "keeping only the light the reconstruction lacks drops the dark slag and soot the model fails to "
                   "redraw; weighting it by the pixel's brightness lifts glowing metal above lit texture, and by its "
                   "warmth (red minus blue) leaves out light clipped to white, which metal glowing orange is not.")
    if "supervised/test/roc_auc_mean" in m:
        out.append(f"- **Baselines under the same budget.** The supervised CNN (the autoencoder's encoder with a "
                   f"two-class head, on the same normalised images, labelled spills too, early-stopped on validation after "
                   f"{m.get('supervised/epochs_mean', float('nan')):.0f} epochs on average) reaches ROC-AUC "
                   f"{ci(m, 'supervised/test/roc_auc_mean')}, TPR {ci(m, 'supervised/test/tpr_mean')}. anomalib's "
                   f"PatchCore on the offline ImageNet `efficientnet_lite0` reaches "
                   f"{ci(m, 'anomalib/patchcore/test/roc_auc_mean')} "
                   f"(TPR {ci(m, 'anomalib/patchcore/test/tpr_mean')}), "
                   f"PaDiM {ci(m, 'anomalib/padim/test/roc_auc_mean')}: ImageNet patch features at stride 8-16 see a "
                   "few-pixel spill poorly and take glare and reflections for anomalies.")
    if "lighting_shift/test/tnr" in m and "lighting_shift/val/tnr" in m:
        tnr = m["lighting_shift/test/tnr"]
        others = ", ".join(f"{k} {m[f'lighting_shift/{k}/val/tnr']:.3f}" for k in LOCAL_SCORES
                           if k != cfg.score and f"lighting_shift/{k}/val/tnr" in m)
        per = ", ".join(f"{c} {m[f'lighting_shift/{c}/tnr']:.2f}" for c in SHIFT_LIGHTING
                        if f"lighting_shift/{c}/tnr" in m)
        out.append(f"- **Lighting the training set never saw, chosen on validation.** On a validation set under new "
                   f"lighting ({', '.join(VAL_SHIFT_LIGHTING).replace('_', ' ')}), the `{cfg.score}` score on the "
                   f"`{cfg.normalisation}` normalisation keeps TNR {ci(m, 'lighting_shift/val/tnr')} at the threshold "
                   f"chosen on regular validation (TPR {ci(m, 'lighting_shift/val/tpr')}; "
                   f"{_worst_seed(m, 'lighting_shift/val')}); the other local scores "
                   f"there: {others}. One gain per image cannot undo a lamp on one side or a flash; dividing each "
                   "pixel by the light around it does, and surfaces lit past the sensor's range clip to white, which "
                   "the warmth weight leaves out.")
        out.append(f"- **Then the test set under other new lighting** ({', '.join(SHIFT_LIGHTING)}), read once after "
                   f"that choice: TNR {ci(m, 'lighting_shift/test/tnr')} (target >= 0.90: {_verdict(tnr >= 0.90)}; by "
                   f"condition: {per}), TPR {ci(m, 'lighting_shift/test/tpr')}; "
                   f"{_worst_seed(m, 'lighting_shift/test')}. Not a blind test: its conditions were known (an earlier run had reported its TNR under the per-image normalisation and the "
                   "brightness-only score) when the validation conditions were drawn up; those are other lighting, "
                   "drawn apart.")
        if "lighting_shift/photometric/val/tnr" in m:
            better = m["lighting_shift/photometric/val/tnr"] > m["lighting_shift/val/tnr"]
            out.append(f"- **Also tried against new lighting**: the autoencoder trained on its normal images under "
                       f"other exposure and lamps (photometric views, first seed): validation-shift TNR "
                       f"{m['lighting_shift/photometric/val/tnr']:.3f}, test-shift TNR "
                       f"{m['lighting_shift/photometric/test/tnr']:.3f}; regular test ROC-AUC "
                       f"{m['photometric/test/roc_auc']:.3f}. " + (
                           "It scores higher on the validation shift than the default, so the default should be "
                           "revisited." if better else "It does not beat the default on the validation shift, so "
                           "it is not adopted."))
    if "design/policy/fpr_bound_5_at_90/p_both" in m or any(k.startswith("design/policy/") for k in m):
        pols = {k.split("/")[2]: v for k, v in m.items() if k.startswith("design/policy/") and k.endswith("/p_both")}
        listed = "; ".join(f"{policy_name(k)}, {v:.2f}" for k, v in pols.items())
        out.append(f"- **How the threshold policy was chosen.** Under the training lighting validation is saturated "
                   f"for the local scores, so scores and policies were compared on a design set, a second draw of the "
                   f"generator that the study never trains or tests on (tables above; what separates the local scores "
                   f"is new lighting, above). There, a threshold chosen on a validation-sized draw keeps both "
                   f"TPR and TNR >= 0.95 on the rest with probability: {listed}.")
    if "experiments/baseline/test_roc_auc" in m:
        val = {k.split("/")[1]: v for k, v in m.items() if k.startswith("experiments/") and k.endswith("/val_roc_auc")}
        best = max(val, key=val.get) if val else None
        shift = {k.split("/")[1]: v for k, v in m.items()
                 if k.startswith("experiments/") and k.endswith("/val_shift_tnr")}
        worst = min(shift, key=shift.get) if shift else None
        base = val.get("baseline", float("nan"))
        out.append("- **Experiments** (each on the same short budget, so only relative; read on validation, test shown "
                   "beside): " + (f"no change beats the baseline's validation ROC-AUC {base:.3f}; "
                                  if best == "baseline" else f"the best validation ROC-AUC is `{best}`'s {val[best]:.3f} against the "
                                  f"baseline's {base:.3f}; " if best else "")
                   + (f"under the validation set's new lighting the baseline keeps TNR {shift['baseline']:.3f}, "
                      f"and `{worst}` drops it most, to {shift[worst]:.3f}; "
                      if "baseline" in shift and shift[worst] < shift["baseline"] else "")
                   + "a ranking at this budget need not hold after full training.")
    out.append(f"- **The original study, and what differs.** The plant's own study, which this task comes from, "
               f"reported TPR {ORIGINAL_STUDY['tpr']:.2f} and TNR {ORIGINAL_STUDY['tnr']:.2f} on real plant photos "
               "(nearly every image flagged; its false alarms blamed on lighting); these images are *generated* 64-pixel wells with "
               "exact labels, so the numbers are not comparable. Different data (no real camera, plant or lighting), "
               "resolution and labels; what carries over is the method (an autoencoder of normal images, a local "
               "score of the light it cannot redraw), the threshold policy (a false-alarm budget bounded on normal "
               "validation images), and the warning that special lighting drives false alarms.")
    return "\n".join(out)
