"""The fashion task: its stages, in the order the notebook and ``python -m cvtasks run fashion``
call them. The hyperparameter study is its own command (``python -m cvtasks study fashion``,
the DVC stage ``study``); its storage is committed and read here. The final recipe lives in
config.FashionConfig; the test set is read once, by ``evaluate``."""
from __future__ import annotations

import json
from dataclasses import replace

import numpy as np
import pandas as pd

import config
from cvtasks.fashion import evaluation as E
from cvtasks.fashion import findings, plots, schedules
from cvtasks.fashion import study as optuna_study
from cvtasks.fashion.data import FashionData, cross_split_duplicates, prepare_data
from cvtasks.fashion.keys import KEYS
from cvtasks.fashion.training import (
    export_dir,
    model_path,
    predict_proba,
    recipe,
    train_final,
    train_model,
)
from cvtasks.io import metrics_path, write_metrics
from cvtasks.models.fashion_classifier import fold_offset
from cvtasks.models.fashion_nets import count_parameters
from cvtasks.plots import confusion_matrix_plot
from cvtasks.prose import slug
from cvtasks.serve.export import export_fashion
from cvtasks.serve.summary import (
    BENCH_FILES,
    export_table,
    inference_table,
    kinds_table,
    load_table,
    slo_table,
    soak_figure,
    stale,
)
from cvtasks.task import Task, stage


class FashionTask(Task):
    """Product category classification on Fashion-MNIST, and the model the service serves."""

    name = "fashion"
    stages = ("data", "architectures", "study", "train", "evaluate", "export", "service")
    prose = findings
    keys = KEYS

    @stage
    def data(self) -> FashionData:
        """The IDX files, a stratified validation hold-out, and the duplicate audit."""
        cfg = self.cfg
        self.data_ = d = prepare_data(cfg)
        self.record({"data/train": len(d.y_train), "data/val": len(d.y_val), "data/test": len(d.y_test),
                     **cross_split_duplicates(d)})
        self.show("data/counts", d.summary())
        self.show("data/samples", plots.samples(d.x_train, d.y_train, d.classes))
        return d

    @stage
    def architectures(self) -> pd.DataFrame:
        """Three network families under one small budget (a stratified subset, a few epochs)."""
        self.require("data")
        cfg, d = self.cfg, self.data_
        small = d.subset(cfg.study_train_size, cfg.study_val_size, cfg.seed)
        rows = []
        for name in ("baseline", "resnet", "mobilenet"):
            run = replace(cfg, model=name, width=config.FASHION_FAMILY_WIDTH[name], depth=1, epochs=cfg.study_epochs,
                          swa=False, mixup=0.0)
            model, history = train_model(small, run, device=self.device)
            best = history.epochs[history.best_epoch - 1]
            rows.append({"model": name, "val/acc": best["val/acc"], "seconds": history.seconds,
                         "parameters": count_parameters(model)})
            self.record({f"architectures/{name}/val_acc": best["val/acc"]})
        table = pd.DataFrame(rows).set_index("model")
        self.show("architectures/table", table.round({"val/acc": 4, "seconds": 1}))
        self.architectures_ = table
        return table

    @stage
    def study(self) -> pd.DataFrame:
        """The Optuna study (resumed from its storage; run when the storage lacks trials): every
        trial, the top recipes over their seeds, the parameters' importance, the winner."""
        self.require("data")
        cfg = self.cfg
        result = optuna_study.run(self.data_, cfg, device=self.device)
        trials = optuna_study.trials_table(result)
        top = optuna_study.top_recipes(result, cfg)
        best = optuna_study.winner(result, cfg)
        chosen = {k: getattr(cfg, k) for k in optuna_study.SPACE}
        self.record({"study/n_trials": int((~trials.repeat).sum()), "study/complete": int((trials.state == "COMPLETE").sum()),
                     "study/pruned": int((trials.state == "PRUNED").sum()),
                     "study/seeds_per_top_config": int(top.seeds.min()), "study/top_configs": len(top),
                     "study/best_val_acc_mean": float(top.val_acc_mean.iloc[0]),
                     "study/best_val_acc_std": float(top.val_acc_std.iloc[0]),
                     "study/config_is_winner": int(all(chosen[k] == best[k] for k in optuna_study.SPACE)),
                     "study/shirt_recall_vs_accuracy_spearman": optuna_study.shirt_recall_vs_accuracy(trials)})
        differs = [k for k in optuna_study.SPACE if chosen[k] != best[k]]
        if differs:   # the names only (a metric is a short label); the values are in the table below
            self.record({"study/config_differs_in": ", ".join(differs)})
        sampled = trials[~trials.repeat].drop(columns=["repeat", "seed"]).set_index("number")
        self.show("study/trials", sampled.sort_values("value", ascending=False).round(4)   # repeats: the next table
                  .fillna("-"))   # a pruned trial has no validation value or Shirt figures
        self.show("study/top", top.round(4))
        importance, parallel = plots.study_figures(result)
        self.show("study/importance", importance)
        self.show("study/parallel", parallel)
        self.show("study/shirt", plots.shirt_by_trial(trials))
        self.show("study/winner", pd.DataFrame({"study's winner": best, "final recipe (config.py)": chosen}))
        self.study_ = trials
        self.tracker.log_artifact("fashion-study", "dataset", [optuna_study.path_of(cfg)] if optuna_study.path_of(cfg).exists() else [],
                                  metadata={"trials": int(len(trials))})
        return trials

    @stage
    def train(self) -> dict:
        """The final recipe (config.py): its committed weights (weights/fashion/model.pt, trained
        where its record says) reused while the recipe is unchanged, or trained here (``retrain``,
        or a changed recipe); compared on validation with the other full-schedule runs."""
        self.require("data")
        cfg = self.cfg
        self.model_, self.meta_ = train_final(cfg, self.data_, model_path(cfg), device=self.device,
                                              reuse=not cfg.retrain)
        meta = self.train_ = self.meta_
        self.record({"train/seconds": float(meta["train_seconds"]), "train/epochs": len(meta["history"]),
                     "train/best_epoch": meta["best_epoch"], "model/parameters": int(meta["parameters"]),
                     "train/device": meta.get("device", "unknown"), "train/reused": int(bool(meta.get("reused")))})
        self.tracker.log_history("final", meta["history"])
        self._schedules()   # recipes compared as trained; the served model carries the offset
        choice = meta["logit_offset"]
        self.model_ = fold_offset(self.model_, choice)
        self.record({"train/offset/class": choice["class_name"], "train/offset/value": choice["offset"],
                     "train/offset/val_min_pr_before": choice["val_min_pr_before"],
                     "train/offset/val_min_pr_after": choice["val_min_pr_after"]})
        self.show("train/recipe", pd.Series(recipe(cfg)).astype(str).to_frame("final recipe"))
        self.tracker.log_artifact("fashion-model", "model", [model_path(cfg)], metadata=recipe(cfg))
        return meta

    def _schedules(self) -> None:
        """The final recipe against the other recipes trained on the full schedule, on the
        validation images (their entries in schedules.json; this run's entry added), each
        recipe's spread over seeds, and the test-time flip chosen there."""
        cfg, d, meta = self.cfg, self.data_, self.meta_
        path, key = schedules.path_of(cfg), schedules.entry_key(meta)
        entries = schedules.load(path)
        if entries.get(key, {}).get("train_seconds") != meta["train_seconds"]:   # new, or trained again
            entries = schedules.record(path, key, schedules.entry(self.model_, meta, d, device=self.device))
        table = schedules.comparison(entries, key, d.y_val, list(d.classes), tta_flip=cfg.tta_flip,
                                     count=cfg.resamples, seed=cfg.seed)
        gain = schedules.flip_gain(entries[key], d.y_val, count=cfg.resamples, seed=cfg.seed)
        self.record({"train/val_acc": float(table.loc["final recipe", "val_acc"]), "schedules/recipes": len(table),
                     **gain.items("train/val_flip_gain")})
        if entries[key].get("cpu_epoch_seconds"):   # measured by bench/fashion_epoch_cost.py
            self.record({"train/cpu_epoch_seconds": entries[key]["cpu_epoch_seconds"],
                         "train/cpu_retrain_hours": entries[key]["cpu_epoch_seconds"] * cfg.epochs / 3600})
        spread = schedules.seed_spread(entries, key)
        mine = spread.loc[schedules.spread_label(entries[key], entries[key]["recipe"])]
        self.record({"train/seeds": int(mine.seeds), "train/val_acc_seeds_mean": mine.val_acc_mean,
                     "train/val_acc_seeds_min": mine.val_acc_min, "train/val_acc_seeds_max": mine.val_acc_max})
        for name, row in table.drop(index="final recipe").iterrows():
            self.record({f"schedules/{slug(name)}/val_acc": row.val_acc,
                         f"schedules/{slug(name)}/minus_final": row.minus_final,
                         f"schedules/{slug(name)}/minus_final_ci_low": row.minus_final_low,
                         f"schedules/{slug(name)}/minus_final_ci_high": row.minus_final_high})
        self.show("train/seeds", spread.round(4))
        self.show("train/schedules", table.drop(columns="key").round(4))
        self.show("train/time_to_accuracy", plots.time_to_accuracy(schedules.curves(entries, key)))

    @stage
    def evaluate(self) -> pd.DataFrame:
        """The 10k test set, once: metrics with intervals, every category's precision and recall,
        the look-alike garments, and the most confident mistakes."""
        self.require("train")
        cfg, d, meta = self.cfg, self.data_, self.meta_
        probs = predict_proba(self.model_, d.x_test, meta["mean"], meta["std"], tta_flip=cfg.tta_flip,
                              device=self.device)
        self.probs_ = probs
        pred = probs.argmax(1)
        self.record(E.split_metrics(d.y_test, probs, "test"))
        for name, iv in E.headline_intervals(d.y_test, probs, count=cfg.resamples, seed=cfg.seed).items():
            self.record(iv.items(f"test/{name}"))
        small = d.subset(cfg.train_eval_size, cfg.val_size, cfg.seed)
        train_probs = predict_proba(self.model_, small.x_train, meta["mean"], meta["std"], tta_flip=cfg.tta_flip,
                                    device=self.device)
        self.record(E.split_metrics(small.y_train, train_probs, "train"))
        table = E.per_class_intervals(d.y_test, pred, d.classes, count=cfg.resamples, seed=cfg.seed)
        for cls, row in table.iterrows():
            key = slug(cls)
            self.record({f"test/{key}/precision": row.precision, f"test/{key}/recall": row.recall,
                         f"test/{key}/precision_ci_low": row.precision_low,
                         f"test/{key}/precision_ci_high": row.precision_high,
                         f"test/{key}/recall_ci_low": row.recall_low, f"test/{key}/recall_ci_high": row.recall_high})
        self.show("evaluate/targets", findings.targets_table(self.metrics))
        self.show("evaluate/train_test", findings.train_test_table(self.metrics))
        self.show("evaluate/per_class", plots.per_class(table))
        self.show("evaluate/per_class_table", table.round(3))
        self.show("evaluate/confusion", confusion_matrix_plot(d.y_test, pred, d.classes))
        self.chart("confusion", "evaluate/confusion_chart", d.y_test, pred, d.classes)
        worst = E.worst_mistakes(d.y_test, probs, cfg.worst_k)
        self.show("evaluate/mistakes", plots.mistakes(d.x_test, d.y_test, probs, worst, d.classes))
        self.examples("evaluate/misclassified", pd.DataFrame({
            "true": [d.classes[d.y_test[i]] for i in worst], "predicted": [d.classes[pred[i]] for i in worst],
            "confidence": probs[worst, pred[worst]]}), {"image": [d.x_test[i] for i in worst]})
        self.per_class_ = table
        self._shirt(pred, probs)
        return table

    def _shirt(self, pred: np.ndarray, probs: np.ndarray) -> None:
        """Shirt, looked at: the confusions among the four look-alike garments and Shirt's errors."""
        cfg, d = self.cfg, self.data_
        shirt = d.classes.index("Shirt")
        self.show("shirt/confusion", E.look_alike_confusion(d.y_test, pred, list(d.classes)))
        missed = pred[(d.y_test == shirt) & (pred != shirt)]
        where = pd.Series(np.asarray(d.classes)[missed]).value_counts(normalize=True).head(3)
        for rank, (cls, share) in enumerate(where.items(), 1):   # where the missed shirts went
            self.record({f"test/shirt/confused_{rank}": cls, f"test/shirt/confused_{rank}_share": float(share)})
        worst = E.worst_mistakes(d.y_test, probs, cfg.worst_k, only=shirt)
        self.show("shirt/missed", plots.mistakes(d.x_test, d.y_test, probs, worst, d.classes))
        called = np.flatnonzero((pred == shirt) & (d.y_test != shirt))
        called = called[np.argsort(-probs[called, shirt])][:cfg.worst_k]
        self.show("shirt/wrongly_called", plots.mistakes(d.x_test, d.y_test, probs, called, d.classes))

    @stage
    def export(self) -> dict:
        """ONNX (normalisation and softmax inside the graph), parity with PyTorch on the test set,
        and the INT8 model the service serves."""
        self.require("train")
        cfg = self.cfg
        folder = export_dir(cfg)
        metrics = export_fashion(model_path(cfg), self.data_, folder)
        write_metrics("fashion", metrics, quick=cfg.quick, name="export", reports_dir=cfg.paths.reports)
        self.record(metrics)
        checks, sizes = export_table(metrics)
        self.show("export/checks", checks)
        self.show("export/sizes", sizes)
        self.tracker.log_artifact("fashion-int8", "model", [folder / "model.int8.onnx"], metadata={
            "int8_drop_points": metrics["export/int8_accuracy_drop_points"]})
        self.export_ = metrics
        return metrics

    @stage
    def service(self) -> dict | None:
        """The service's load test and soak, read from their stamped files (``python -m cvtasks
        bench serve`` and ``bench soak``: minutes each, on an otherwise idle machine, so not run
        here), checked against the model this run exported."""
        self.require("export")

        cfg = self.cfg
        model = export_dir(cfg) / "model.int8.onnx"
        command = "`python -m cvtasks bench {}" + (" --quick`" if cfg.quick else "`")
        found, notes = {}, []
        for cmd, name in BENCH_FILES.items():
            path = metrics_path("fashion", cfg.quick, name=name, reports_dir=cfg.paths.reports)
            if not path.exists():
                notes.append(f"- `{path.name}` is missing: run {command.format(cmd)}.")
                continue
            bench = json.loads(path.read_text())
            if "model_sha256" not in bench:
                notes.append(f"- `{path.name}` predates the stamped format: re-run {command.format(cmd)}.")
                continue
            found[name] = bench
            why = stale(bench, model)
            stamp = f"commit {bench.get('git_commit')}, {bench.get('date_utc')}, {bench.get('cpu_count')} CPUs"
            notes.append(f"- `{path.name}` ({stamp}): " + (f"**stale**: {why}; re-run it." if why
                         else f"measured this run's model ({model.name}, sha256 {bench['model_sha256'][:12]}...)."))
        self.show("service/provenance", "\n".join(notes))
        if "bench_serve" in found:
            self.show("service/targets", slo_table(found["bench_serve"], found.get("soak")))
            self.show("service/load", load_table(found["bench_serve"]))
            self.show("service/inference", inference_table(found["bench_serve"]))
            if "upload_kinds" in found["bench_serve"]:
                self.show("service/upload_kinds", kinds_table(found["bench_serve"]))
        if "soak" in found:
            self.show("service/soak", soak_figure(found["soak"]))
        self.service_ = found
        return found or None

    def conclusion_inputs(self) -> dict:
        return {"service": getattr(self, "service_", None)}   # the bench files the service stage read
