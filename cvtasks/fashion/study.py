"""The fashion classifier's hyperparameter study, with Optuna.

Trials train on the 55k training images and are scored on the 5k validation images (the test
set is never read): a seeded TPE sampler proposes a recipe from the product plan's grid
(learning rate, batch size, optimiser, dropout, batch norm, augmentation) and the levers that
matter on this data (width and depth, random erasing, mixup, label smoothing, weight averaging,
test-time flip); a median pruner stops a trial whose validation accuracy after an epoch is below
the median of earlier trials at that epoch. Then the best ``study_top`` recipes are trained again
with other seeds (enqueued trials, never pruned), so that the winner is the best mean over
``study_seeds`` seeds, not one lucky draw.

Everything lives in one Optuna storage, by default SQLite under reports/fashion/ (small, committed,
read by the notebook). Several machines run the same study by pointing ``--storage`` at a shared
database (``postgresql://...``) or an Optuna journal file on a shared disk (``journal:PATH``):
each worker runs ``python -m cvtasks study fashion --storage URL`` and takes trials until the
study has ``--trials`` of them.
"""
from __future__ import annotations

import warnings
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

import config
from cvtasks.fashion.data import FashionData
from cvtasks.fashion.training import predict_proba, train_model

STUDY_NAME = "fashion-recipe"
SPACE: dict[str, tuple] = {
    # the product plan's grid
    "lr": (1e-4, 1e-3, 3e-3, 1e-2),
    "batch_size": (32, 64, 128, 256),
    "optimizer": ("adam", "sgd", "adamw"),
    "dropout": (0.3, 0.5, 0.7),
    "batchnorm": (True, False),
    "augment": ("none", "crop,flip", "crop,flip,erase", "crop,flip,rotate"),
    # levers that matter on this data
    "width": (16, 24, 32),
    "depth": (1, 2),
    "label_smoothing": (0.0, 0.1),
    "mixup": (0.0, 0.2),
    "swa": (False, True),
    "tta_flip": (False, True),
}


def storage_url(cfg: config.FashionConfig, storage: str | None = None) -> Any:
    """The study's storage: ``journal:PATH`` (a journal file), a database URL, or by default
    SQLite at reports/fashion/[quick/]study.db."""
    if storage and storage.startswith("journal:"):
        import optuna

        return optuna.storages.JournalStorage(optuna.storages.journal.JournalFileBackend(storage[len("journal:"):]))
    if storage:
        return storage
    path = path_of(cfg)
    path.parent.mkdir(parents=True, exist_ok=True)
    return f"sqlite:///{path}"


def load(cfg: config.FashionConfig, storage: str | None = None):
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    return optuna.create_study(study_name=STUDY_NAME, storage=storage_url(cfg, storage), direction="maximize",
                               sampler=optuna.samplers.TPESampler(seed=cfg.seed),
                               pruner=optuna.pruners.MedianPruner(n_startup_trials=5, n_warmup_steps=0),
                               load_if_exists=True)


def recipe_of(params: dict[str, Any], cfg: config.FashionConfig) -> config.FashionConfig:
    """The base config with a trial's parameters, on the study's budget."""
    return replace(cfg, **{k: v for k, v in params.items() if k in SPACE}, model="resnet", epochs=cfg.study_epochs,
                   train_size=cfg.train_size, val_size=cfg.val_size)


def objective(trial, data: FashionData, cfg: config.FashionConfig, device: Any = None) -> float:
    import optuna

    repeat = "seed" in trial.user_attrs   # a top recipe trained again with another seed: never pruned
    params = {name: trial.suggest_categorical(name, values) for name, values in SPACE.items()}
    run = replace(recipe_of(params, cfg), seed=int(trial.user_attrs.get("seed", cfg.seed)))

    def report(row: dict[str, float]) -> None:
        trial.report(row["val/acc"], int(row["epoch"]))
        if not repeat and trial.should_prune():
            raise optuna.TrialPruned()

    model, history = train_model(data, run, device=device, on_epoch=report)
    mean, std = data.mean_std
    probs = predict_proba(model, data.x_val, mean, std, tta_flip=run.tta_flip, device=device)
    pred = probs.argmax(1)
    shirt = data.classes.index("Shirt")
    trial.set_user_attr("seconds", history.seconds)
    trial.set_user_attr("seed", run.seed)
    trial.set_user_attr("shirt_recall", float((pred[data.y_val == shirt] == shirt).mean()))
    trial.set_user_attr("shirt_precision", float((data.y_val[pred == shirt] == shirt).mean()) if (pred == shirt).any()
                        else 0.0)
    return float((pred == data.y_val).mean())


def run(data: FashionData, cfg: config.FashionConfig, *, trials: int | None = None, storage: str | None = None,
        device: Any = None):
    """Trials until the study holds ``trials`` (default ``cfg.study_trials``) sampled ones, then
    the top recipes again with the missing seeds; resumable and shareable through the storage."""
    import optuna

    study = load(cfg, storage)
    sampled = [t for t in study.trials if not t.user_attrs.get("repeat")]
    missing = max(0, (trials or cfg.study_trials) - len(sampled))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        study.optimize(lambda t: objective(t, data, cfg, device), n_trials=missing, gc_after_trial=True)
        for params, seeds in repeats_needed(study, cfg).items():
            for seed in seeds:
                study.enqueue_trial(dict(params), user_attrs={"seed": seed, "repeat": True})
        pending = sum(1 for t in study.trials if t.state == optuna.trial.TrialState.WAITING)
        if pending:
            study.optimize(lambda t: objective(t, data, cfg, device), n_trials=pending, gc_after_trial=True)
    return study


def repeats_needed(study, cfg: config.FashionConfig) -> dict[tuple, list[int]]:
    """The top recipes by their first seed's value, and the seeds each still lacks."""
    table = trials_table(study)
    done = table[table.state == "COMPLETE"]
    first = done[~done.repeat].sort_values("value", ascending=False).head(cfg.study_top)
    out = {}
    for _, row in first.iterrows():
        key = tuple((k, row[k]) for k in SPACE)
        have = set(done[(done[list(SPACE)] == pd.Series(dict(key))).all(axis=1)].seed)
        want = [cfg.seed + k for k in range(cfg.study_seeds)]
        missing = [s for s in want if s not in have]
        if missing:
            out[key] = missing
    return out


def trials_table(study) -> pd.DataFrame:
    rows = []
    for t in study.trials:
        rows.append({"number": t.number, "state": t.state.name, "value": t.value, **t.params,
                     "seed": t.user_attrs.get("seed"), "repeat": bool(t.user_attrs.get("repeat")),
                     "seconds": t.user_attrs.get("seconds"), "shirt_recall": t.user_attrs.get("shirt_recall"),
                     "shirt_precision": t.user_attrs.get("shirt_precision"),
                     "epochs": len(t.intermediate_values)})
    return pd.DataFrame(rows)


def shirt_recall_vs_accuracy(trials: pd.DataFrame) -> float:
    """Spearman correlation, over the completed trials, of validation accuracy and Shirt recall."""
    done = trials[trials.state == "COMPLETE"]
    return float(done["value"].corr(done["shirt_recall"], method="spearman"))


def top_recipes(study, cfg: config.FashionConfig) -> pd.DataFrame:
    """The recipes trained with several seeds: mean and spread of their validation accuracy."""
    table = trials_table(study)
    done = table[table.state == "COMPLETE"].copy()
    done["recipe"] = done[list(SPACE)].astype(str).agg(" | ".join, axis=1)
    grouped = done.groupby("recipe")
    summary = grouped.agg(val_acc_mean=("value", "mean"), val_acc_std=("value", "std"), seeds=("value", "size"),
                          shirt_recall=("shirt_recall", "mean"), shirt_precision=("shirt_precision", "mean"),
                          seconds_mean=("seconds", "mean"))
    params = grouped[list(SPACE)].first()
    out = summary.join(params)
    return out[out.seeds > 1].sort_values("val_acc_mean", ascending=False)


def winner(study, cfg: config.FashionConfig) -> dict[str, Any]:
    """The recipe with the best mean validation accuracy over its seeds."""
    top = top_recipes(study, cfg)
    if top.empty:
        raise ValueError("the study has no recipe trained with several seeds yet: run `python -m cvtasks study fashion`")
    row = top.iloc[0]
    return {k: (v.item() if isinstance(v, np.generic) else v) for k, v in row[list(SPACE)].items()}


def path_of(cfg: config.FashionConfig) -> Path:
    return cfg.paths.reports / "fashion" / ("quick" if cfg.quick else "") / "study.db"
