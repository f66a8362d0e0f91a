"""The spill study's experiments: one change at a time to the autoencoder, the design set that
chose the score and the threshold policy, and the error analysis by lighting, smoke and size."""
from __future__ import annotations

import warnings
from dataclasses import replace
from typing import Any

import numpy as np
import pandas as pd
import torch
from sklearn.metrics import roc_auc_score, roc_curve

import config
from cvtasks.data.wells import WellImages
from cvtasks.spill.data import NORMALISATIONS, Split, normal_only, normalise, raw_images
from cvtasks.spill.evaluation import point_metrics
from cvtasks.spill.scores import SCORES, anomaly_scores
from cvtasks.spill.thresholds import choose_threshold
from cvtasks.spill.training import VIEWS, AutoencoderData, Budget, reconstruct, train_autoencoder

SIZE_BINS = (0.0, 0.01, 0.03, 1.0)          # spill area (share of pixels): small, medium, large
SIZE_LABELS = ("small <1%", "medium 1-3%", "large >3%")


def experiment_variants(cfg: config.SpillConfig) -> list[dict[str, Any]]:
    """The architecture / loss / learning-rate / normalisation / augmentation variants, each one change away
    from the baseline settings of ``cfg``."""
    base = {"depth": cfg.depth, "bottleneck": cfg.bottleneck, "loss": cfg.loss, "lr": cfg.lr,
            "normalisation": cfg.normalisation, "augment": cfg.augment}
    changes = [{}, {"depth": cfg.depth - 1}, {"depth": cfg.depth + 1}, {"bottleneck": cfg.bottleneck // 4},
               {"bottleneck": cfg.bottleneck * 4}, {"loss": "l1" if cfg.loss == "mse" else "mse"},
               {"lr": cfg.lr * 10}, *({"normalisation": n} for n in NORMALISATIONS if n != cfg.normalisation),
               *({"augment": a} for a in VIEWS if a != cfg.augment)]
    return [{"change": ", ".join(f"{k}={v}" for k, v in c.items()) or "baseline", **base, **c}
            for c in changes if c.get("depth", 1) >= 1 and c.get("bottleneck", 1) >= 1]


def run_experiments(images: np.ndarray, labels: np.ndarray, split: Split, cfg: config.SpillConfig,
                    *, epochs: int, val_shift: WellImages | None = None, device: Any = None) -> pd.DataFrame:
    """Train each variant on the same split for ``epochs`` (the same short budget for all, so the
    rows compare with each other, not with the full model); validation and test figures per row,
    and with ``val_shift`` the TNR on that validation set under new lighting."""
    rows = []
    for v in experiment_variants(cfg):
        x, shift, scale = normalise(images, v["normalisation"], cfg.normalisation_sigma)
        train = normal_only(split.train, labels)
        variant = replace(cfg, **{k: v[k] for k in ("depth", "bottleneck", "loss", "augment", "normalisation")})
        data = AutoencoderData(x[train], raw_images(images[train]), x[split.val], labels[split.val], scale[split.val],
                               shift[split.val])
        model, hist = train_autoencoder(data, variant, Budget(epochs, None, v["lr"], cfg.batch_size), seed=cfg.seed,
                                        device=device)
        s_val, s_test = (anomaly_scores(reconstruct(model, x[i], device=device), x[i], cfg.score, cfg.score_sigma,
                                        scale[i], shift[i]) for i in (split.val, split.test))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")   # quick runs have too few normal images to bound the rate
            thr = choose_threshold(labels[split.val], s_val, cfg.threshold_policy, cfg.target_fpr, cfg.fpr_confidence)
        m = point_metrics(labels[split.test], s_test, thr)
        row = {**v, "best_epoch": hist.best_epoch, "val_roc_auc": roc_auc_score(labels[split.val], s_val)}
        if val_shift is not None:
            xs, shift_s, scale_s = normalise(val_shift.images, v["normalisation"], cfg.normalisation_sigma)
            s_shift = anomaly_scores(reconstruct(model, xs, device=device), xs, cfg.score, cfg.score_sigma, scale_s,
                                     shift_s)
            row["val_shift_tnr"] = float(np.mean(s_shift[val_shift.labels == 0] < thr))
        row.update({f"test_{k}": m[k] for k in ("roc_auc", "pr_auc", "tpr", "tnr")})
        rows.append({**row, "seconds": hist.seconds})
    return pd.DataFrame(rows).set_index("change").round(3)


# --- the design set ---------------------------------------------------------------------------------
def design_scores(model: torch.nn.Module, design: WellImages, cfg: config.SpillConfig,
                  device: Any = None) -> dict[str, np.ndarray]:
    """Every score of the autoencoder on the design images."""
    x, shift, scale = normalise(design.images, cfg.normalisation, cfg.normalisation_sigma)
    recon = reconstruct(model, x, device=device)
    return {m: anomaly_scores(recon, x, m, cfg.score_sigma, scale, shift) for m in SCORES}


def score_comparison(scores: dict[str, np.ndarray], y: np.ndarray, lighting: np.ndarray,
                     fprs: tuple[float, ...]) -> pd.DataFrame:
    """Per score: ROC-AUC, TPR at each false-alarm rate, and the false-alarm rate per lighting
    condition at the first of them."""
    rows = {}
    for name, s in scores.items():
        fpr, tpr, _ = roc_curve(y, s)
        row = {"roc_auc": roc_auc_score(y, s), **{f"tpr@{f:.0%}": float(np.interp(f, fpr, tpr)) for f in fprs}}
        thr = np.quantile(s[y == 0], 1 - fprs[0])
        row.update({f"false alarms {c}": float(np.mean(s[(y == 0) & (lighting == c)] >= thr))
                    for c in np.unique(lighting)})
        rows[name] = row
    return pd.DataFrame(rows).T.round(3)


def policy_transfer(s: np.ndarray, y: np.ndarray, policies: tuple[tuple[str, float], ...], *, val_per_class: int,
                    repeats: int, target_fpr: float, seed: int) -> pd.DataFrame:
    """How a threshold chosen on ``val_per_class`` normal + spill design images (the study's
    validation size) carries over to the other design images, over ``repeats`` random draws:
    mean TPR / TNR and how often each, and both, reach 0.95."""
    rng = np.random.default_rng(seed)
    normal, spills = np.flatnonzero(y == 0), np.flatnonzero(y == 1)
    rows = {}
    for policy, confidence in policies:
        out = []
        for _ in range(repeats):
            n, p = rng.permutation(normal), rng.permutation(spills)
            val = np.r_[n[:val_per_class], p[:val_per_class]]
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                thr = choose_threshold(y[val], s[val], policy, target_fpr, confidence)
            out.append((np.mean(s[p[val_per_class:]] >= thr), np.mean(s[n[val_per_class:]] < thr)))
        tpr, tnr = np.array(out).T
        label = policy + ("" if policy == "youden" else f" {target_fpr:.0%}") + (
            f" at {confidence:.0%}" if policy == "fpr_bound" else "")
        rows[label] = {"tpr": tpr.mean(), "tnr": tnr.mean(), "P(tpr>=0.95)": np.mean(tpr >= .95),
                       "P(tnr>=0.95)": np.mean(tnr >= .95), "P(both)": np.mean((tpr >= .95) & (tnr >= .95))}
    return pd.DataFrame(rows).T.round(3)


def error_analysis(data: WellImages, idx: np.ndarray, flagged: dict[str, np.ndarray]) -> pd.DataFrame:
    """Share of images flagged, per group, for each detector: on normal images that is the
    false-alarm rate (1 - TNR), on spills the detection rate (TPR)."""
    labels = data.labels[idx]
    area = data.spill_area[idx]
    size = pd.cut(area, SIZE_BINS, labels=SIZE_LABELS, right=False).astype(str)
    groups = {
        **{("normal: false alarms", f"light={c}"): (labels == 0) & (data.lighting[idx] == c)
           for c in np.unique(data.lighting[idx])},
        ("normal: false alarms", "smoke"): (labels == 0) & data.smoke[idx],
        **{("spill: detected", f"light={c}"): (labels == 1) & (data.lighting[idx] == c)
           for c in np.unique(data.lighting[idx])},
        ("spill: detected", "smoke"): (labels == 1) & data.smoke[idx],
        **{("spill: detected", f"size {s}"): (labels == 1) & (size == s) for s in SIZE_LABELS},
    }
    rows = []
    for (kind, group), mask in groups.items():
        if mask.any():
            rows.append({"images": kind, "group": group, "n": int(mask.sum()),
                         **{name: float(f[mask].mean()) for name, f in flagged.items()}})
    return pd.DataFrame(rows).set_index(["images", "group"]).round(3)
