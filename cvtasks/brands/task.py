"""The brands task: its stages, in the order the notebook and ``python -m cvtasks run brands``
call them. Model rows are trained with ``cfg.seeds`` seeds; figures are means over seeds with
95 % intervals from a bootstrap over product models (and seeds)."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
import torch

from cvtasks.brands import evaluation as E
from cvtasks.brands import findings, plots
from cvtasks.brands import labelling as L
from cvtasks.brands.data import BrandData, downscale, load_data
from cvtasks.brands.features import backbone_features
from cvtasks.brands.keys import KEYS
from cvtasks.brands.training import (
    Trained,
    cnn_inputs,
    finetune,
    probabilities,
    train_head,
    train_small_cnn,
)
from cvtasks.io import save_npz
from cvtasks.metrics import classification_metrics
from cvtasks.models import create_image_encoder
from cvtasks.models.brands_nets import BrandHead
from cvtasks.plots import confusion_matrix_plot
from cvtasks.runtime import seed_everything
from cvtasks.stats import Interval
from cvtasks.task import Task, stage
from cvtasks.tracking import export_projector
from cvtasks.train import save_checkpoint

MODELS = ("frozen", "finetuned", "small_cnn")


@dataclass
class ModelRuns:
    """One model over the seeds: the trained runs and every image's class probabilities."""

    runs: list[Trained]
    probs: list[np.ndarray]

    @property
    def preds(self) -> list[np.ndarray]:
        return [p.argmax(1) for p in self.probs]


class BrandsTask(Task):
    """Chandelier brand classification: transfer learning, a small CNN, labelling, embeddings."""

    name = "brands"
    stages = ("data", "baseline", "features", "frozen", "finetune", "small_cnn", "evaluate", "imbalance",
              "embeddings", "active_learning", "autolabel")
    prose = findings
    keys = KEYS

    def _seeds(self) -> list[int]:
        return [self.cfg.seed + k for k in range(self.cfg.seeds)]

    def _folder(self):
        return self.cfg.paths.models / "brands" / ("quick" if self.quick else "full")

    def _record_model(self, name: str, probs: list[np.ndarray]) -> None:
        """Every split's metrics, means over seeds (``<name>/<split>/...``), and the macro-F1
        interval on validation and test."""
        d, cfg = self.data_, self.cfg
        per_seed = [E.split_metrics(p, d, prefix=f"{name}/") for p in probs]
        self.record({k: float(np.mean([m[k] for m in per_seed])) for k in per_seed[0]})
        preds = [p.argmax(1) for p in probs]
        for part in ("val", "test"):
            iv = E.seeds_models_interval(preds, d, part, count=cfg.resamples, seed=cfg.seed)
            self.record(iv.items(f"{name}/{part}/macro_f1"))

    # --- stages ------------------------------------------------------------------------------
    @stage
    def data(self) -> BrandData:
        """The photos, split by product model: every photo of a model on one side."""
        cfg = self.cfg
        self.data_ = d = load_data(cfg)
        self.record(E.data_metrics(d))
        self.show("data/counts", d.counts())
        self.show("data/samples", plots.sample_grid(d, per_brand=6, seed=cfg.seed))
        described = save_npz(self._folder() / "brands_split.npz", labels=d.labels, groups=d.groups, split=d.split)
        self.tracker.log_artifact("brands-photos", "dataset", [described],
                                  metadata={**{k: str(v) for k, v in d.key.items()}, "classes": list(d.classes)})
        return d

    @stage
    def baseline(self) -> np.ndarray:
        """Is colour enough? RGB histograms and a logistic regression, fitted on train and
        measured on every split."""
        self.require("data")
        d, cfg = self.data_, self.cfg
        probs = E.color_histogram_baseline(d, cfg.hist_bins, cfg.baseline_c, cfg.seed)
        self.record(E.split_metrics(probs, d, prefix="baseline/"))
        iv = E.seeds_models_interval([probs.argmax(1)], d, "test", count=cfg.resamples, seed=cfg.seed)
        self.record(iv.items("baseline/test/macro_f1"))
        self.baseline_ = probs
        self.show("baseline/table", pd.DataFrame({part: {m: self.metrics[f"baseline/{part}/{m}"]
                                                         for m in ("accuracy", "macro_f1", "balanced_accuracy")}
                                                  for part in E.SPLITS}).round(3))
        return probs

    @stage
    def features(self) -> dict[str, np.ndarray]:
        """One pass of the pretrained backbone over every photo (cached): the pooled embedding
        and the activations entering its last block."""
        self.require("data")
        cfg = self.cfg
        self.encoder_ = create_image_encoder(cfg.encoder)
        self.features_ = backbone_features(self.encoder_, self.data_, cfg.finetune_blocks, device=self.device,
                                           cache_dir=cfg.paths.cache)
        emb = self.features_["embeddings"]
        self.record({"features/dim": emb.shape[1], "features/activation_values": int(np.prod(
            self.features_["activations"].shape[1:]))})
        return self.features_

    @stage
    def frozen(self) -> ModelRuns:
        """Our head on the frozen backbone's embeddings, once per seed."""
        self.require("features")
        emb = self.features_["embeddings"]
        runs = [train_head(emb, self.data_, self.cfg, seed=s, device=self.device) for s in self._seeds()]
        self.frozen_ = ModelRuns(runs, [probabilities(r.model, emb, self.device) for r in runs])
        self._after_training("frozen", self.frozen_)
        return self.frozen_

    @stage
    def finetune(self) -> ModelRuns:
        """The backbone's last block fine-tuned with the same seed's trained head, on cached
        activations, once per seed."""
        self.require("features", "frozen")
        acts = self.features_["activations"]
        runs = [finetune(self.encoder_, head.model, acts, self.data_, self.cfg, seed=head.seed, device=self.device)
                for head in self.frozen_.runs]
        self.finetune_ = ModelRuns(runs, [probabilities(r.model, acts, self.device) for r in runs])
        self._after_training("finetuned", self.finetune_)
        return self.finetune_

    @stage
    def small_cnn(self) -> ModelRuns:
        """A small CNN from scratch on downscaled photos, once per seed."""
        self.require("data")
        x = cnn_inputs(self.data_, self.cfg.cnn_size)
        runs = [train_small_cnn(self.data_, self.cfg, seed=s, device=self.device) for s in self._seeds()]
        self.small_cnn_ = ModelRuns(runs, [probabilities(r.model, x, self.device) for r in runs])
        self._after_training("small_cnn", self.small_cnn_)
        return self.small_cnn_

    def _after_training(self, name: str, runs: ModelRuns) -> None:
        self._record_model(name, runs.probs)
        self.record({f"time/{name}_train_s_mean": float(np.mean([r.seconds for r in runs.runs])),
                     f"{name}/best_epoch_mean": float(np.mean([r.history.best_epoch for r in runs.runs]))})
        for r in runs.runs:
            self.tracker.log_history(f"{name}_seed{r.seed}", r.history.epochs)
        self.show(f"{name}/curves", plots.curves({name: runs.runs[0]}))

    @stage
    def evaluate(self) -> pd.DataFrame:
        """Every model on every split with intervals; the transfer model of the headline (frozen
        or fine-tuned) chosen on validation; fine-tuned against frozen, paired."""
        self.require("baseline", "frozen", "finetune", "small_cnn")
        d, cfg = self.data_, self.cfg
        best = max(("frozen", "finetuned"), key=lambda k: self.metrics[f"{k}/val/macro_f1"])
        runs = {"frozen": self.frozen_, "finetuned": self.finetune_, "small_cnn": self.small_cnn_}
        self.record({"transfer/finetuned_selected": int(best == "finetuned")})
        chosen = runs[best]
        self.record({k.split("/", 1)[1]: v for k, v in self.metrics.items() if k.startswith(f"{best}/")
                     and k.split("/")[1] in E.SPLITS})
        diff = E.paired_difference(self.finetune_.preds, self.frozen_.preds, d, "test", count=cfg.resamples,
                                   seed=cfg.seed)
        self.record(diff.items("finetuned_minus_frozen/test/macro_f1"))
        table = findings.comparison(self.metrics, (*MODELS, "baseline"))
        self.show("evaluate/intervals", plots.intervals(
            {n: self._interval(n) for n in (*MODELS, "baseline")}, target=0.90))
        self.show("evaluate/models", table)
        probs = chosen.probs[0]
        self.show("evaluate/per_class", E.per_class(probs, d).rename_axis(   # one seed, unlike the means above
            f"brand (test; training seed 1 of {len(chosen.probs)})"))
        test = d.idx("test")
        ax = confusion_matrix_plot(d.labels[test], probs[test].argmax(1), d.classes)
        ax.set_title(f"transfer model ({best}, seed {cfg.seed}), test split", fontsize=9)
        self.show("evaluate/confusion", ax)
        self.chart("confusion", "evaluate/confusion_chart", d.labels[test], probs[test].argmax(1), d.classes)
        gallery = plots.mistakes_gallery(d, probs, "test", limit=16)
        if gallery is not None:
            self.show("evaluate/mistakes", gallery)
        pred = probs[test].argmax(1)
        self.examples("evaluate/test_predictions", pd.DataFrame({
            "brand": [d.classes[b] for b in d.labels[test]], "predicted": [d.classes[b] for b in pred],
            "confidence": probs[test].max(1), "model": d.groups[test]}), {"photo": list(downscale(d.images[test], 96))})
        path = save_checkpoint(self._folder() / "head.pt", self.frozen_.runs[0].model, seed=cfg.seed,
                               classes=list(d.classes))
        self.tracker.log_artifact("brands-head", "model", [path], metadata={"encoder": cfg.encoder, "chosen": best})
        self.evaluate_ = table
        return table

    def _interval(self, name: str):
        key = f"{name}/test/macro_f1"
        return Interval(self.metrics[key], self.metrics[f"{key}_ci_low"], self.metrics[f"{key}_ci_high"])

    @stage
    def imbalance(self) -> pd.DataFrame:
        """The same head with and without class weights (means over seeds, test split)."""
        self.require("features")
        d, emb = self.data_, self.features_["embeddings"]
        rows = {}
        for weighted in (False, True):
            per_seed = [classification_metrics(d.labels[d.idx("test")], probabilities(
                train_head(emb, d, self.cfg, seed=s, weighted=weighted, device=self.device).model,
                emb[d.idx("test")], self.device), prefix="test") for s in self._seeds()]
            key = "weighted" if weighted else "unweighted"
            rows["class weights" if weighted else "plain cross-entropy"] = {
                k.split("/")[1]: float(np.mean([m[k] for m in per_seed])) for k in per_seed[0]}
            for col in ("macro_f1", "balanced_accuracy", "min_class_recall"):
                self.record({f"imbalance/{key}_{col}": rows[list(rows)[-1]][col]})
        table = pd.DataFrame(rows).T.round(3)
        self.show("imbalance/table", table)
        self.imbalance_ = table
        return table

    @stage
    def embeddings(self) -> dict[str, np.ndarray]:
        """The head's penultimate layer on the test split before training (a fresh head, same
        seed) and after: silhouettes with intervals, UMAP, the TensorBoard projector."""
        self.require("evaluate")
        d, cfg = self.data_, self.cfg
        test = d.idx("test")
        best = "finetuned" if self.metrics["transfer/finetuned_selected"] else "frozen"
        model = (self.finetune_ if best == "finetuned" else self.frozen_).runs[0].model
        x = self.features_["activations" if best == "finetuned" else "embeddings"]
        seed_everything(cfg.seed)
        untrained = BrandHead(self.features_["embeddings"].shape[1], cfg.hidden_dim, len(d.classes), cfg.dropout)
        emb = {"before": _penultimate(untrained, self.features_["embeddings"][test]),
               "after": _penultimate(model, x[test])}
        sil = {k: E.silhouette_interval(v, d.labels[test], d.groups[test], count=cfg.resamples, seed=cfg.seed)
               for k, v in emb.items()}
        for k, iv in sil.items():
            self.record(iv.items(f"embed/silhouette_{k}"))
        points = {k: E.umap_2d(v, cfg.umap_neighbors, cfg.seed) for k, v in emb.items()}
        self.show("embed/umap", plots.umap_pair(points, d.labels[test], d.classes, sil))
        export_projector(emb["after"], [d.classes[b] for b in d.labels[test]], cfg.paths.runs / "brands",
                         images=downscale(d.images[test], cfg.sprite_size), sprite_size=cfg.sprite_size)
        probs = (self.finetune_ if best == "finetuned" else self.frozen_).probs[0][test]
        self.examples("embed/test_embeddings", pd.DataFrame({
            "brand": [d.classes[b] for b in d.labels[test]], "predicted": [d.classes[b] for b in probs.argmax(1)],
            "model": d.groups[test], "umap_x": points["after"][:, 0], "umap_y": points["after"][:, 1]}),
            {"photo": list(downscale(d.images[test], 64))})
        self.embeddings_ = emb
        return emb

    @stage
    def active_learning(self) -> pd.DataFrame:
        """Labelling the pool with each strategy and seed, judged on validation; the strategy
        that needs the fewest labels is then tested once."""
        self.require("features")
        d, cfg = self.data_, self.cfg
        emb = self.features_["embeddings"]
        pool, val, test = d.idx("train"), d.idx("val"), d.idx("test")
        # pool, validation and test go through one unsupervised map, fitted on the pool alone
        project = L.pool_projector(emb[pool], cfg.al_pca_dims, cfg.seed).transform
        feats, val_f, test_f = project(emb[pool]), project(emb[val]), project(emb[test])
        k = len(d.classes)
        sessions = {s: [L.session(feats, d.labels[pool], val_f, d.labels[val], strategy=s, n_classes=k, cfg=cfg,
                                  seed=cfg.seed + r) for r in range(cfg.al_seeds)] for s in cfg.al_strategies}
        full = L.full_label_accuracy(feats, d.labels[pool], val_f, d.labels[val], cfg.seed)
        table = L.reach_table(sessions, cfg.al_target * full)
        chosen = L.choose_strategy(table)
        budget = table.loc[chosen, "median"]
        self.record({"al/eval_split": "val", "al/seeds": cfg.al_seeds, "al/pool_size": len(pool),
                     "al/full_accuracy_val": full, "al/labels_budget": float(sessions[chosen][0].n_labels[-1]),
                     "al/chosen": chosen})
        for s, row in table.iterrows():
            for col in ("median", "min", "max"):
                self.record({f"al/{s}/labels_to_95pct_{col}": float(row[col])})
            self.record({f"al/{s}/reached": int(str(row["reached"]).split()[0])})
        if np.isfinite(budget):
            self.record({"al/labels_to_95pct_median": float(budget), "al/labels_fraction_of_pool": budget / len(pool)})
            full_test = L.full_label_accuracy(feats, d.labels[pool], test_f, d.labels[test], cfg.seed)
            at_budget = L.test_at_budget(feats, d.labels[pool], test_f, d.labels[test], sessions[chosen], budget,
                                         cfg.seed)
            self.record({"al/test/accuracy_at_budget": at_budget, "al/test/full_accuracy": full_test,
                         "al/test/share_of_full": at_budget / full_test})
        self.show("al/curves", plots.al_curves(sessions, full, cfg.al_target, len(pool)))
        shown = table.assign(**{"share of pool (median)": table["median"].astype(float) / len(pool)})
        self.show("al/labels_to_target", shown.round(3).fillna("not reached"))   # by over half of the sessions
        x = sessions["random"][0].n_labels
        self.chart("curves", "al/val_accuracy", x, {s: np.mean([r.val_accuracy[:len(x)] for r in runs], 0).tolist()
                                                    for s, runs in sessions.items()}, xname="labels asked for")
        self.al_sessions = sessions
        self.active_learning_ = table
        return table

    @stage
    def autolabel(self) -> pd.DataFrame:
        """Auto-labelling a pool with wrong labels: inject label noise (mostly look-alike brands),
        flag suspects with cleanlab, and auto-label with what survives: accuracy by coverage."""
        self.require("features")
        d, cfg = self.data_, self.cfg
        emb = self.features_["embeddings"]
        pool = d.idx("train")
        truth, k = d.labels[pool], len(d.classes)
        feats = L.pool_projector(emb[pool], cfg.al_pca_dims, cfg.seed).transform(emb[pool])
        nearest = L.lookalikes(emb[pool], truth, k)
        noisy, flipped = L.inject_noise(truth, k, cfg.autolabel_noise, cfg.autolabel_lookalike, nearest, cfg.seed)
        groups = d.groups[pool]
        probs_noisy = L.out_of_fold(feats, noisy, groups, k, cfg.autolabel_folds, cfg.seed)
        flags = L.find_suspects(noisy, probs_noisy)
        precision = float(flipped[flags].mean()) if flags.any() else float("nan")
        recall = float(flags[flipped].mean())
        probs_clean = L.out_of_fold(feats, noisy, groups, k, cfg.autolabel_folds, cfg.seed, keep=~flags)
        levels = np.round(np.arange(0.1, 1.01, 0.1), 2)
        curves = {"trained on the noisy labels": L.coverage_curve(probs_noisy, truth, levels),
                  "trained on the labels cleanlab keeps": L.coverage_curve(probs_clean, truth, levels)}
        sure = probs_clean.max(1) >= cfg.autolabel_threshold
        accuracy = float((probs_clean.argmax(1)[sure] == truth[sure]).mean()) if sure.any() else float("nan")
        self.record({"autolabel/noise_rate": float(flipped.mean()), "autolabel/flag_precision": precision,
                     "autolabel/flag_recall": recall, "autolabel/flagged": int(flags.sum()),
                     "autolabel/coverage": float(sure.mean()), "autolabel/accuracy": accuracy,
                     "autolabel/noisy_label_accuracy": float((noisy == truth).mean())})
        for name, frame in curves.items():
            tag = "clean" if "keeps" in name else "noisy"
            for r in frame.itertuples():
                self.record({f"autolabel/{tag}/accuracy_at_{int(round(r.coverage * 100))}pct": r.accuracy})
        self.show("autolabel/coverage", plots.coverage_plot(curves, (float(sure.mean()), accuracy)))
        pairs = pd.Series([f"{d.classes[t]} -> {d.classes[n]}" for t, n in zip(truth[flipped], noisy[flipped])])
        self.show("autolabel/injected", pairs.value_counts().head(8).rename("wrong labels injected").to_frame())
        table = pd.DataFrame({"injected wrong labels": [int(flipped.sum())], "flagged by cleanlab": [int(flags.sum())],
                              "flag precision": [precision], "flag recall": [recall],
                              f"auto-labelled at p >= {cfg.autolabel_threshold}": [f"{sure.mean():.1%}"],
                              "their accuracy": [accuracy]}).round(3)
        self.show("autolabel/table", table)
        self.autolabel_ = table
        return table


@torch.no_grad()
def _penultimate(model, x: np.ndarray, batch_size: int = 256) -> np.ndarray:
    """The head's hidden-layer output (its penultimate Linear layer, after the ReLU)."""
    model.eval().cpu()
    x = torch.as_tensor(x)
    return np.concatenate([model.embed(x[s:s + batch_size].float()).numpy() for s in range(0, len(x), batch_size)])
