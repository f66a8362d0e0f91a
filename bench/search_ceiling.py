"""How much of the embedded search data's relevance the frozen features can explain at most.

    python bench/search_ceiling.py

A diagnostic, not a model: it uses the Open Clip Art folders (category / subject), which the
builder's relevance rule uses and no model is given. On the annotated test pairs it prints:

1. the R2 of oracles that know a pair's kind (own image / same subject / same category / other),
   only whether it is an own-image pair, or the own image and the category;
2. the R2 reachable from the frozen vectors with the folders as privileged labels: logistic
   classifiers of category and subject on the image and on the text vectors, cross-fitted over
   5 folds, then a gradient-boosted regressor on the two "same folder" probabilities (with and
   without a perfect own-image flag).

Takes about 7 minutes on the 2-core CPU for all 3,166 drawings (3 for the former 1,400), with the
embeddings cached (`python -m cvtasks run search`).
"""
from __future__ import annotations

import os
import sys
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.ensemble import HistGradientBoostingRegressor
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import r2_score
from sklearn.model_selection import GroupKFold
from sklearn.preprocessing import StandardScaler

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.setdefault("CVTASKS_WANDB", "disabled")

import config  # noqa: E402
from cvtasks import search  # noqa: E402


def category(names: pd.Series) -> pd.Series:      # "animals__amphibian__frog.png" -> "animals"
    return names.str.split("__").str[0]


def subject(names: pd.Series) -> pd.Series:       # -> "animals__amphibian"
    return names.str.rsplit("__", n=1).str[0]


def oracle_r2(y: np.ndarray, groups: np.ndarray, train: np.ndarray, test: np.ndarray) -> float:
    """R2 on test of predicting each pair by its group's mean target on train."""
    means = pd.Series(y[train]).groupby(groups[train]).mean()
    return r2_score(y[test], means.reindex(groups[test]).fillna(y[train].mean()).to_numpy())


def crossfit_probs(x: np.ndarray, labels: np.ndarray, groups: np.ndarray, classes: list[str]) -> np.ndarray:
    out = np.zeros((len(x), len(classes)))
    for fit, held in GroupKFold(5).split(x, groups=groups):
        clf = LogisticRegression(C=0.05, max_iter=1000).fit(x[fit], labels[fit])
        out[np.ix_(held, [classes.index(c) for c in clf.classes_])] = clf.predict_proba(x[held])
    return out


def main() -> None:
    warnings.filterwarnings("ignore", category=UserWarning)
    cfg = config.get("search")
    if cfg.dataset_dir is not None:
        raise SystemExit("this diagnostic needs the embedded Open Clip Art data (its folders are in the file names)")
    data, feats, split = search.prepare(cfg)
    pairs = data.pairs
    y = search.expert_target(pairs[search.EXPERTS].to_numpy())
    own = pairs.query_id.str.split("#").str[0]
    kind = np.select([pairs.image == own, subject(pairs.image) == subject(own), category(pairs.image) == category(own)],
                     ["own", "same subject", "same category"], "other")
    train, test = split["train"], split["test"]
    print("test pairs by kind:", pd.Series(kind[test]).value_counts(normalize=True).round(3).to_dict())
    print("mean target by kind (train):", pd.Series(y[train]).groupby(kind[train]).mean().round(3).to_dict())
    is_own = np.where(kind == "own", "own", "not own")
    own_and_cat = np.where(kind == "own", "own", category(pairs.image).eq(category(own)).map({True: "cat", False: "-"}))
    print(f"\noracle R2 on test pairs: pair kind {oracle_r2(y, kind, train, test):.3f}, own image + category "
          f"{oracle_r2(y, own_and_cat, train, test):.3f}, own image only {oracle_r2(y, is_own, train, test):.3f}")

    names = pd.Series(data.train_images)
    query_own = pd.Series(own.to_numpy()).groupby(feats.pair_query).first().reindex(range(len(feats.queries)))
    x_img, x_txt = (StandardScaler().fit_transform(v) for v in (feats.train_images, feats.queries))
    same = []
    for level, of in (("category", category), ("subject", subject)):
        img_labels, txt_labels = of(names).to_numpy(), of(query_own).to_numpy()
        classes = sorted(set(img_labels) | set(txt_labels))
        p_img = crossfit_probs(x_img, img_labels, names.to_numpy(), classes)
        p_txt = crossfit_probs(x_txt, txt_labels, query_own.to_numpy(), classes)
        print(f"{level}: out-of-fold accuracy from the image {np.mean(np.array(classes)[p_img.argmax(1)] == img_labels):.3f}, "
              f"from the text {np.mean(np.array(classes)[p_txt.argmax(1)] == txt_labels):.3f} ({len(classes)} classes)")
        same.append((p_img[feats.pair_image] * p_txt[feats.pair_query]).sum(1))
    x = np.column_stack(same)
    for label, z in (("folder probabilities", x), ("folder probabilities + perfect own-image flag",
                                                   np.column_stack([x, kind == "own"]))):
        reg = HistGradientBoostingRegressor(max_iter=200, learning_rate=0.05, random_state=cfg.seed).fit(z[train], y[train])
        print(f"R2 on test pairs from {label}: {r2_score(y[test], reg.predict(z[test])):.3f}")


if __name__ == "__main__":
    main()
