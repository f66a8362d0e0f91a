"""The spill task: its stages, in the order the notebook and ``python -m cvtasks run spill``
call them. Every trained detector is trained with ``cfg.seeds`` seeds; each seed's threshold is
chosen on validation and applied unchanged to test."""
from __future__ import annotations

import warnings
from dataclasses import dataclass, replace

import numpy as np
import pandas as pd
import torch

from cvtasks.data.wells import (
    CLASSES,
    SHIFT_LIGHTING,
    VAL_SHIFT_LIGHTING,
    WellImages,
    WellSettings,
    generate_wells,
)
from cvtasks.io import save_npz
from cvtasks.plots import image_grid
from cvtasks.prose import slug
from cvtasks.spill import anomalib_baselines as AB
from cvtasks.spill import evaluation as E
from cvtasks.spill import experiments as X
from cvtasks.spill import findings, plots
from cvtasks.spill.data import (
    Split,
    examples_by_lighting,
    load_data,
    make_split,
    normal_only,
    normalise,
    raw_images,
    to_uint8,
)
from cvtasks.spill.keys import KEYS
from cvtasks.spill.scores import LOCAL_SCORES, SCORES, anomaly_scores, local_error_map
from cvtasks.spill.training import (
    AutoencoderData,
    Budget,
    classifier_scores,
    reconstruct,
    train_autoencoder,
    train_classifier,
)
from cvtasks.task import Task, stage
from cvtasks.train import save_checkpoint

PARTS = ("val", "test")


@dataclass
class Wells:
    data: WellImages
    split: Split
    x: torch.Tensor        # normalised images
    mean: torch.Tensor     # the normalisation's per-image shift and scale
    std: torch.Tensor

    @property
    def ae_train(self) -> np.ndarray:
        """The autoencoder's training images: the normal ones of the training part."""
        return normal_only(self.split.train, self.data.labels)

    def y(self, part: str) -> np.ndarray:
        return self.data.labels[getattr(self.split, part)]


@dataclass
class Detector:
    """One detector over the seeds: its scores per seed and part, thresholds, intervals."""

    scores: list[dict[str, np.ndarray]]
    thresholds: list[float]
    intervals: dict


class SpillTask(Task):
    """Metal spills around tap-hole wells, flagged by an autoencoder's reconstruction error."""

    name = "spill"
    stages = ("data", "autoencoder", "scores", "baselines", "maps", "errors", "lighting_shift", "design",
              "experiments")
    prose = findings
    keys = KEYS

    def budget(self) -> Budget:
        return Budget(self.cfg.epochs, self.cfg.patience, self.cfg.lr, self.cfg.batch_size)

    def _ae_data(self) -> AutoencoderData:
        """The autoencoder's normal training images (normalised and raw) and its validation set."""
        w, s = self.data_, self.data_.split
        return AutoencoderData(w.x[w.ae_train], raw_images(w.data.images[w.ae_train]), w.x[s.val], w.y("val"),
                               w.std[s.val], w.mean[s.val])

    def _seeds(self) -> list[int]:
        return [self.cfg.seed + k for k in range(self.cfg.seeds)]

    def _detector(self, name: str, scores: list[dict[str, np.ndarray]], prefix: str) -> Detector:
        """Thresholds on validation, test metrics per seed, their mean and interval, recorded."""
        w, cfg = self.data_, self.cfg
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")   # a quick run's validation is too small to bound the rate
            thrs = E.thresholds(w.y("val"), [s["val"] for s in scores], cfg)
        intervals = E.seeds_intervals(w.y("test"), [s["test"] for s in scores], thrs, resamples=cfg.resamples,
                                      seed=cfg.seed)
        self.record(E.flatten(prefix, intervals, len(scores)))
        val = E.per_seed(w.y("val"), [s["val"] for s in scores], thrs).mean()
        self.record({f"{prefix}val/{m}_mean": float(val[m]) for m in E.METRICS})
        self.record({f"{prefix}threshold_mean": float(np.mean(thrs))})
        self.detectors_[name] = Detector(scores, thrs, intervals)
        return self.detectors_[name]

    # --- stages ------------------------------------------------------------------------------
    @stage
    def data(self) -> Wells:
        """The wells (generated, or a photo folder), the stratified split, the normalisation."""
        cfg = self.cfg
        data = load_data(cfg)
        split = make_split(data.labels, cfg.val_fraction, cfg.test_fraction, cfg.seed)
        x, mean, std = normalise(data.images, cfg.normalisation, cfg.normalisation_sigma)
        self.data_ = Wells(data, split, x, mean, std)
        self.detectors_: dict[str, Detector] = {}
        counts = {part: [int((data.labels[getattr(split, part)] == k).sum()) for k in (0, 1)]
                  for part in ("train", "val", "test")}
        self.record({f"data/{part}/{CLASSES[k]}": counts[part][k] for part in counts for k in (0, 1)})
        self.record({"data/n_images": len(data.labels), "data/ae_train": len(self.data_.ae_train)})
        picks = examples_by_lighting(data)
        self.show("data/examples", image_grid(data.images[picks], [f"{CLASSES[data.labels[i]]}\n{data.lighting[i]}"
                                                                   for i in picks], ncols=max(1, len(picks) // 2),
                                              size=1.5))
        if cfg.normalisation != "fixed":
            self.show("data/normalised", image_grid(to_uint8(x[picks], torch.tensor(0.4), torch.tensor(0.2)),
                                                    [str(data.lighting[i]) for i in picks],
                                                    ncols=max(1, len(picks) // 2), size=1.5))
        table = pd.DataFrame(counts, index=list(CLASSES)).T.assign(
            autoencoder_sees=[len(self.data_.ae_train), 0, 0])
        self.show("data/split", table)
        described = self._folder() / "wells_split.npz"
        save_npz(described, labels=data.labels, lighting=data.lighting, train=split.train, val=split.val,
                 test=split.test)
        self.tracker.log_artifact("spill-wells", "dataset", [described],
                                  metadata={"source": str(cfg.photos_dir or "generator"), "n_images": cfg.n_images,
                                            "size": cfg.image_size, "seed": cfg.seed})
        return self.data_

    def _folder(self):
        return self.cfg.paths.models / "spill" / ("quick" if self.quick else "full")

    @stage
    def autoencoder(self) -> list:
        """The autoencoder trained on the normal training images, once per seed; every score of
        its reconstructions on validation and test."""
        self.require("data")
        cfg = self.cfg
        self.autoencoder_, histories, self.ae_scores_ = [], [], []
        for seed in self._seeds():
            model, history = train_autoencoder(self._ae_data(), cfg, self.budget(), seed=seed, device=self.device)
            self.autoencoder_.append(model)
            histories.append(history)
            self.ae_scores_.append(self._all_scores(model))
            self.tracker.log_history(f"autoencoder_seed{seed}", history.epochs)
        self.ae_histories_ = histories
        path = save_checkpoint(self._folder() / "autoencoder.pt", self.autoencoder_[0], seed=cfg.seed,
                               depth=cfg.depth, base=cfg.base_channels, bottleneck=cfg.bottleneck)
        self.tracker.log_artifact("spill-autoencoder", "model", [path], metadata={"score": cfg.score})
        self.record({"autoencoder/best_epoch_mean": float(np.mean([h.best_epoch for h in histories])),
                     "autoencoder/train_seconds_mean": float(np.mean([h.seconds for h in histories]))})
        self.show("autoencoder/curves", plots.training_curves(histories))
        return self.autoencoder_

    def _all_scores(self, model) -> dict[str, dict[str, np.ndarray]]:
        """score name -> part -> scores, for every score of SCORES."""
        w, cfg = self.data_, self.cfg
        out: dict[str, dict[str, np.ndarray]] = {m: {} for m in SCORES}
        for part in PARTS:
            idx = getattr(w.split, part)
            recon = reconstruct(model, w.x[idx], device=self.device)
            for m in SCORES:
                out[m][part] = anomaly_scores(recon, w.x[idx], m, cfg.score_sigma, w.std[idx], w.mean[idx])
        return out

    @stage
    def scores(self) -> pd.DataFrame:
        """Thresholds on validation and test figures over the seeds, for every score of the same
        reconstructions; the threshold policies side by side."""
        self.require("data", "autoencoder")
        w, cfg = self.data_, self.cfg
        for m in SCORES:
            name = "autoencoder" if m == cfg.score else f"ae_{m}"
            self._detector(name, [s[m] for s in self.ae_scores_], "" if m == cfg.score else f"ae_{m}/")
        table = E.summary_table({n: d.intervals for n, d in self.detectors_.items()})
        first = {n: d.scores[0]["test"] for n, d in self.detectors_.items()}
        self.show("autoencoder/score_histograms", plots.score_histograms(
            first, w.y("test"), {n: d.thresholds[0] for n, d in self.detectors_.items()}))
        self.show("autoencoder/scores", table)
        self.show("autoencoder/policies", E.policy_table({p: w.y(p) for p in PARTS},
                                                         self.detectors_["autoencoder"].scores, cfg))
        self.show("autoencoder/roc", plots.roc_plot({n: (w.y("test"), s) for n, s in first.items()}))
        self.scores_ = table
        y = w.y("test")
        best = self.detectors_["autoencoder"]
        self.record({"test/roc_auc_ci_low": best.intervals["roc_auc"].low})   # the key: the mean's interval
        flagged = best.scores[0]["test"] >= best.thresholds[0]
        self.chart("confusion", "autoencoder/confusion", y, flagged.astype(int), list(CLASSES))
        self.chart("roc_pr", "autoencoder/test", y, np.c_[-best.scores[0]["test"], best.scores[0]["test"]],
                   list(CLASSES))
        return table

    @stage
    def baselines(self) -> pd.DataFrame:
        """The supervised CNN (labelled spills too, the autoencoder's budget) and anomalib's
        PatchCore and PaDiM on the offline backbone, each over the seeds."""
        self.require("data", "scores")
        w, cfg = self.data_, self.cfg
        s, y = w.split, w.data.labels
        cnn_scores, histories = [], []
        for seed in self._seeds():
            cnn, history = train_classifier(w.x[s.train], y[s.train], w.x[s.val], y[s.val], cfg, self.budget(),
                                            seed=seed, device=self.device)
            cnn_scores.append({p: classifier_scores(cnn, w.x[getattr(s, p)], self.device) for p in PARTS})
            histories.append(history)
            self.tracker.log_history(f"supervised_seed{seed}", history.epochs)
        self._detector("supervised", cnn_scores, "supervised/")
        self.record({"supervised/best_epoch_mean": float(np.mean([h.best_epoch for h in histories])),
                     "supervised/epochs_mean": float(np.mean([len(h.epochs) for h in histories]))})
        images = w.data.images
        parts = {p: images[getattr(s, p)] for p in PARTS}
        for method in AB.METHODS:
            runs = [AB.fit_and_score(method, images[w.ae_train], parts, cfg, seed=seed, device=self.device)
                    for seed in self._seeds()]
            detector = self._detector(f"anomalib {method}", runs, f"anomalib/{method}/")
            for m in E.METRICS:   # the key: the mean over seeds
                self.record({f"anomalib/{method}/test/{m}": detector.intervals[m].value})
        names = ["autoencoder", "supervised", "anomalib patchcore", "anomalib padim"]
        ivs = {n: self.detectors_[n].intervals for n in names}
        self.show("baselines/intervals", plots.intervals_plot(ivs, targets={"roc_auc": 0.98, "tpr": 0.95, "tnr": 0.95}))
        table = E.summary_table(ivs)
        self.show("baselines/table", table)
        self.baselines_ = table
        return table

    @stage
    def maps(self) -> None:
        """What the score sees: the error maps of test images the first seed's model flags
        correctly, misses, and flags wrongly, on one colour scale with the threshold marked."""
        self.require("data", "scores")
        w, cfg = self.data_, self.cfg
        method = cfg.score if cfg.score in LOCAL_SCORES else "pooled"   # a global score has no map
        detector = self.detectors_["autoencoder" if method == cfg.score else f"ae_{method}"]
        idx, score, thr = w.split.test, detector.scores[0]["test"], detector.thresholds[0]
        y = w.y("test")
        order = np.argsort(-score)
        groups = {"flagged spill": order[(y[order] == 1) & (score[order] >= thr)][:3],
                  "missed spill": order[(y[order] == 1) & (score[order] < thr)][:3],
                  "false alarm": order[(y[order] == 0) & (score[order] >= thr)][:3],
                  "quiet normal": order[(y[order] == 0) & (score[order] < thr)][:2]}
        chosen = np.concatenate([v for v in groups.values()]).astype(int)
        labels = [g for g, v in groups.items() for _ in v]
        sel = idx[chosen]
        recon = reconstruct(self.autoencoder_[0], w.x[sel], device=self.device)
        maps = local_error_map(recon, w.x[sel], method, cfg.score_sigma, w.std[sel], w.mean[sel]).numpy()
        titles = [f"{w.data.lighting[i].replace('_', ' ')}\nscore {score[c]:.2f}" for i, c in zip(sel, chosen)]
        vmax = float(np.quantile(detector.scores[0]["test"], 0.99))
        self.show("maps/error_maps", plots.error_maps(list(w.data.images[sel]), list(maps), titles, thr, vmax, labels))
        self.examples("maps/examples", pd.DataFrame({"group": labels, "lighting": w.data.lighting[sel],
                                                     "score": score[chosen], "threshold": thr}),
                      {"image": list(w.data.images[sel]), "reconstruction": list(
                          to_uint8(recon, w.mean[sel], w.std[sel]))})
        self.record({f"maps/{slug(g)}": len(v) for g, v in groups.items()})

    @stage
    def errors(self) -> pd.DataFrame:
        """The share flagged per lighting condition, smoke and spill size, averaged over seeds."""
        self.require("data", "baselines")
        w = self.data_
        flagged = {name: np.mean([sc["test"] >= t for sc, t in zip(d.scores, d.thresholds)], axis=0)
                   for name, d in self.detectors_.items() if not name.startswith("ae_")}
        table = X.error_analysis(w.data, w.split.test, flagged)
        for (kind, group), row in table.iterrows():
            self.record({f"errors/{slug(kind)}/{slug(group)}": row["autoencoder"]})
        self.show("errors/table", table)
        return table

    @stage
    def lighting_shift(self) -> pd.DataFrame:
        """Two sets under lighting no training image had, each seed's autoencoder and threshold
        unchanged: a validation set (flash, side lamp, night), where the normalisation and the
        score were chosen, and the test set (overexposed, dusk, spotlight), read once after; the
        false alarms (TNR) and detections (TPR) there, per score."""
        self.require("data", "scores")
        w, cfg = self.data_, self.cfg
        if cfg.photos_dir is not None:
            raise ValueError("the lighting-shift stage draws its images from the generator; with photos_dir "
                             "set, put photos under new lighting in a folder of their own and score them instead")
        shifted = {part: self._shift_set(part) for part in PARTS}
        normalised = {part: normalise(shift.images, cfg.normalisation, cfg.normalisation_sigma)
                      for part, shift in shifted.items()}
        recons = {part: [reconstruct(model, x, device=self.device) for model in self.autoencoder_]
                  for part, (x, _, _) in normalised.items()}
        rows, choice = [], {}
        for m in LOCAL_SCORES:
            chosen = m == cfg.score
            d = self.detectors_["autoencoder" if chosen else f"ae_{m}"]
            prefix, infix = ("", "") if chosen else (f"ae_{m}/", f"{m}/")   # of the detector's and the shift's keys
            choice[m] = {f"val/{k}": self.metrics[f"{prefix}val/{k}_mean"] for k in ("roc_auc", "tpr", "tnr")}
            for part, shift in shifted.items():
                x, mean, std = normalised[part]
                scores = [anomaly_scores(recon, x, m, cfg.score_sigma, std, mean) for recon in recons[part]]
                ivs = E.seeds_intervals(shift.labels, scores, d.thresholds, resamples=cfg.resamples, seed=cfg.seed,
                                        metrics=("tpr", "tnr"))
                for k in ("tnr", "tpr"):
                    self.record(ivs[k].items(f"lighting_shift/{infix}{part}/{k}"))
                    choice[m][f"{part} shift/{k}"] = ivs[k].value
                if chosen:
                    self.record(E.worst_seed_tnr(f"lighting_shift/{part}", shift.labels, scores, d.thresholds))
                rows += E.tnr_by_condition(m, shift.lighting, shift.labels, scores, d.thresholds,
                                           plots.LIGHTING_SETS[part])
            rows += E.tnr_by_condition(m, w.data.lighting[w.split.test], w.y("test"),
                                       [sc["test"] for sc in d.scores], d.thresholds, plots.LIGHTING_SETS["training"])
        if cfg.augment != "photometric":
            rows += self._photometric_probe(shifted, normalised)
        table = pd.DataFrame(rows)
        for r in table[(table.lighting == plots.LIGHTING_SETS["test"]) & (table.score == cfg.score)].itertuples():
            self.record({f"lighting_shift/{r.condition}/tnr": r.tnr})
        self.show("lighting_shift/choice", pd.DataFrame(choice).T.round(3))
        self.show("lighting_shift/tnr", plots.shift_plot(table))
        self.show("lighting_shift/table", table.pivot_table(index=["lighting", "condition"], columns="score",
                                                            values="tnr", sort=False).round(3).fillna("not run"))
        return table

    def _shift_set(self, part: str) -> WellImages:
        """The wells under new lighting: ``val`` (VAL_SHIFT_LIGHTING) or ``test`` (SHIFT_LIGHTING),
        each its own draw of the generator, apart from the study's images and from each other."""
        cfg = self.cfg
        lighting, n, offset = {"val": (VAL_SHIFT_LIGHTING, cfg.val_shift_images, 3),
                               "test": (SHIFT_LIGHTING, cfg.shift_images, 2)}[part]
        settings = WellSettings(n_images=n, size=cfg.image_size, seed=cfg.seed + offset * cfg.design_seed_offset,
                                lighting=lighting, lighting_p=(1 / len(lighting),) * len(lighting))
        return generate_wells(settings, cache_dir=cfg.paths.cache)

    def _photometric_probe(self, shifted: dict[str, WellImages], normalised: dict[str, tuple]) -> list[dict]:
        """What was tried against new lighting: the autoencoder trained (first seed, same budget) on
        its normal images under other exposure and lamps. Its threshold comes from validation as
        always; regular test and both shift sets' figures are recorded beside the chosen model's."""
        w, cfg = self.data_, self.cfg
        s = w.split
        model, _ = train_autoencoder(self._ae_data(), replace(cfg, augment="photometric"), self.budget(),
                                     seed=cfg.seed, device=self.device)

        def scores(x, mean, std):
            return anomaly_scores(reconstruct(model, x, device=self.device), x, cfg.score, cfg.score_sigma, std, mean)

        parts = {p: scores(w.x[getattr(s, p)], w.mean[getattr(s, p)], w.std[getattr(s, p)]) for p in PARTS}
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            thr = E.thresholds(w.y("val"), [parts["val"]], cfg)[0]
        self.record({f"photometric/test/{k}": v for k, v in E.point_metrics(w.y("test"), parts["test"], thr).items()})
        rows = []
        for part, shift in shifted.items():
            x, mean, std = normalised[part]
            probe = scores(x, mean, std)
            self.record({f"lighting_shift/photometric/{part}/{k}": v
                         for k, v in E.point_metrics(shift.labels, probe, thr).items() if k in ("tnr", "tpr")})
            rows += E.tnr_by_condition(f"{cfg.score} + photometric views", shift.lighting, shift.labels, [probe],
                                       [thr], plots.LIGHTING_SETS[part])
        return rows

    @stage
    def design(self) -> dict[str, pd.DataFrame]:
        """The design set that chose the score and the threshold policy: a second draw of the
        generator that the study never trains or tests on, scored by the first seed's model."""
        self.require("data", "autoencoder")
        cfg = self.cfg
        if cfg.photos_dir is not None:
            raise ValueError("the design stage draws its images from the generator; it is not run on photos")
        design = generate_wells(WellSettings(n_images=cfg.design_images, size=cfg.image_size,
                                             seed=cfg.seed + cfg.design_seed_offset), cache_dir=cfg.paths.cache)
        scores = X.design_scores(self.autoencoder_[0], design, cfg, self.device)
        comparison = X.score_comparison(scores, design.labels, design.lighting, (cfg.target_fpr, 0.02, 0.01))
        per_class = int(round(cfg.val_fraction * cfg.n_images / 2))
        policies = X.policy_transfer(scores[cfg.score], design.labels,
                                     (("youden", 0.9), ("fixed_fpr", 0.9), ("fpr_bound", cfg.fpr_confidence)),
                                     val_per_class=per_class, repeats=cfg.design_repeats, target_fpr=cfg.target_fpr,
                                     seed=cfg.seed)
        for name, row in comparison.iterrows():
            self.record({f"design/{name}/roc_auc": row["roc_auc"],
                         f"design/{name}/tpr_at_target_fpr": row[f"tpr@{cfg.target_fpr:.0%}"]})
        for name, row in policies.iterrows():
            self.record({f"design/policy/{slug(name)}/p_both": row["P(both)"],
                         f"design/policy/{slug(name)}/tnr": row["tnr"]})
        self.record({"design/n_images": len(design.labels)})
        self.show("design/scores", comparison)
        self.show("design/policies", policies)
        self.design_ = {"scores": comparison, "policies": policies}
        return self.design_

    @stage
    def experiments(self) -> pd.DataFrame:
        """One change at a time to the autoencoder, each on the same short budget."""
        self.require("data")
        w, cfg = self.data_, self.cfg
        val_shift = self._shift_set("val") if cfg.photos_dir is None else None
        table = X.run_experiments(w.data.images, w.data.labels, w.split, cfg, epochs=cfg.experiment_epochs,
                                  val_shift=val_shift, device=self.device)
        for change, row in table.iterrows():
            self.record({f"experiments/{slug(change)}/{split}_roc_auc": row[f"{split}_roc_auc"]
                         for split in ("val", "test")})
            if "val_shift_tnr" in row:
                self.record({f"experiments/{slug(change)}/val_shift_tnr": row["val_shift_tnr"]})
        self.show("experiments/table", table)
        return table
