"""The spill detector's design choices, measured on a design set that test never sees.

    python bench/spill_design.py [--images 3000] [--repeats 300]

Validation (400 images) is saturated for the autoencoder (TPR 0.995 at a 5 % false-alarm
rate for every score tried), so it cannot tell the choices apart. This script trains the
autoencoder of ``config.SpillConfig`` as the study does, then scores a second draw of the
generator (seed ``cfg.seed + 1000``, disjoint from the study's images) and prints:

1. per score (``cvtasks.spill.SCORES``): ROC-AUC and TPR at 5 / 2 / 1 % false alarms, and the
   false-alarm rate per lighting condition at 5 %;
2. per threshold policy: how a threshold chosen on 200 + 200 images (the study's validation
   size) transfers to the other design images, over ``--repeats`` random draws: mean TPR / TNR
   and how often both reach 0.95.

Takes about 2 minutes on the 2-core CPU.
"""
from __future__ import annotations

import argparse
import os
import sys
import warnings
from pathlib import Path

import numpy as np
from sklearn.metrics import roc_auc_score, roc_curve

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.setdefault("CVTASKS_WANDB", "disabled")

import config  # noqa: E402
from cvtasks import spill  # noqa: E402
from cvtasks.data.wells import WellSettings, generate_wells  # noqa: E402

POLICIES = (("youden", 0.05, 0.9), ("fixed_fpr", 0.05, 0.9), ("fpr_bound", 0.05, 0.9), ("fpr_bound", 0.05, 0.95))


def score_table(scores: dict[str, np.ndarray], y: np.ndarray, lighting: np.ndarray) -> None:
    print(f"{'score':<10} {'ROC-AUC':>8} {'TPR@5%':>7} {'TPR@2%':>7} {'TPR@1%':>7}   false alarms at 5 % by lighting")
    for name, s in scores.items():
        fpr, tpr, _ = roc_curve(y, s)
        thr = np.quantile(s[y == 0], 0.95)
        by_light = "  ".join(f"{c} {np.mean(s[(y == 0) & (lighting == c)] >= thr):.2f}" for c in np.unique(lighting))
        print(f"{name:<10} {roc_auc_score(y, s):8.4f} {np.interp(0.05, fpr, tpr):7.3f} {np.interp(0.02, fpr, tpr):7.3f} "
              f"{np.interp(0.01, fpr, tpr):7.3f}   {by_light}")


def policy_table(s: np.ndarray, y: np.ndarray, repeats: int, seed: int) -> None:
    rng = np.random.default_rng(seed)
    normal, spills = np.flatnonzero(y == 0), np.flatnonzero(y == 1)
    print(f"\n{'policy':<26} {'TPR':>6} {'TNR':>6} {'P(TPR>=.95)':>12} {'P(TNR>=.95)':>12} {'P(both)':>8}")
    for policy, target, confidence in POLICIES:
        out = []
        for _ in range(repeats):
            n, p = rng.permutation(normal), rng.permutation(spills)
            val = np.r_[n[:200], p[:200]]
            rest_n, rest_p = n[200:], p[200:]
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                thr = spill.choose_threshold(y[val], s[val], policy, target, confidence)
            out.append((np.mean(s[rest_p] >= thr), np.mean(s[rest_n] < thr)))
        tpr, tnr = np.array(out).T
        label = policy + ("" if policy == "youden" else f" {target:.0%}") + (f" @{confidence:.0%}" if policy == "fpr_bound" else "")
        print(f"{label:<26} {tpr.mean():6.3f} {tnr.mean():6.3f} {np.mean(tpr >= .95):12.2f} {np.mean(tnr >= .95):12.2f} "
              f"{np.mean((tpr >= .95) & (tnr >= .95)):8.2f}")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--images", type=int, default=3000, help="design images (half of them spills)")
    parser.add_argument("--repeats", type=int, default=300, help="random validation draws per policy")
    args = parser.parse_args()
    cfg = config.get("spill")
    study = spill.prepare(cfg)
    spill.fit_autoencoder(study)
    design = generate_wells(WellSettings(n_images=args.images, size=cfg.image_size, seed=cfg.seed + 1000))
    x, shift, scale = spill.normalise(design.images, cfg.normalisation)
    recon = spill.reconstruct(study.autoencoder, x)
    scores = {m: spill.anomaly_scores(recon, x, m, cfg.score_sigma, scale, shift) for m in spill.SCORES}
    print(f"design set: {args.images} generated images (seed {cfg.seed + 1000}); autoencoder as in the study "
          f"(best epoch {study.ae_history.best_epoch})\n")
    score_table(scores, design.labels, design.lighting)
    print(f"\nthreshold policies, {cfg.score} score: chosen on 200 normal + 200 spill design images, "
          f"applied to the other {args.images - 400}")
    policy_table(scores[cfg.score], design.labels, args.repeats, cfg.seed)


if __name__ == "__main__":
    main()
