"""Labelling the training pool: active learning with scikit-activeml, and auto-labelling with
suspect labels found by confident learning (cleanlab).

Active learning: the pool's photos start unlabelled. Each session starts from a few random
labels (TypiClust, a cold-start strategy, picks its own start), and each round a light
classifier (logistic regression on the pool's backbone embeddings, standardised and reduced by
PCA fitted once on the unlabelled pool) asks a simulated annotator for a batch: at random, the
least confident, the smallest margin, the highest entropy, or TypiClust's typical points of
new clusters. Accuracy is measured on the **validation** split after every round; the test
split is not looked at until the strategy is chosen. The fits run on one BLAS thread: on
matrices this small, threads cost more than they save.

Auto-labelling: a labeller's pool holds wrong labels, most of them between look-alike brands.
Some are injected (a known share, a known look-alike for each brand: its nearest brand in the
embedding), out-of-fold probabilities (folds by product model) let cleanlab flag suspects, and
a classifier trained on the labels that survive labels the pool at each confidence level: the
coverage-accuracy curve says how much can be labelled automatically, and how well.
"""
from __future__ import annotations

import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from sklearn.decomposition import PCA
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import GroupKFold
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from threadpoolctl import threadpool_limits

import config

UNCERTAINTY = {"least_confident": "least_confident", "margin": "margin_sampling", "entropy": "entropy"}


def pool_projector(pool_x: np.ndarray, pca_dims: int, seed: int):
    """Standardisation and PCA fitted on the (unlabelled) pool's embeddings; ``.transform`` maps
    the pool, validation and test embeddings alike."""
    dims = max(1, min(pca_dims, len(pool_x) - 1, pool_x.shape[1]))
    with threadpool_limits(limits=1):
        return make_pipeline(StandardScaler(), PCA(n_components=dims, random_state=seed)).fit(pool_x)


def light_classifier(seed: int) -> LogisticRegression:
    return LogisticRegression(C=0.5, max_iter=500, random_state=seed)


def _query_strategy(strategy: str, seed: int):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from skactiveml.pool import RandomSampling, TypiClust, UncertaintySampling
    if strategy == "random":
        return RandomSampling(random_state=seed)
    if strategy in UNCERTAINTY:
        return UncertaintySampling(method=UNCERTAINTY[strategy], random_state=seed)
    if strategy == "typiclust":
        return TypiClust(random_state=seed)
    raise ValueError(f"unknown strategy {strategy!r}; known: random, {', '.join(UNCERTAINTY)}, typiclust")


@dataclass
class Session:
    """One labelling session: validation accuracy after each round."""

    strategy: str
    seed: int
    n_labels: list[int] = field(default_factory=list)
    val_accuracy: list[float] = field(default_factory=list)
    labelled: list[np.ndarray] = field(default_factory=list)   # pool indices labelled after each round


def session(features: np.ndarray, pool_y: np.ndarray, val_features: np.ndarray, val_y: np.ndarray, *,
            strategy: str, n_classes: int, cfg: config.BrandsConfig, seed: int) -> Session:
    """``cfg.al_initial_labels`` labels, then ``cfg.al_rounds`` queries of ``cfg.al_batch`` through
    scikit-activeml."""
    initial, batch, rounds = cfg.al_initial_labels, cfg.al_batch, cfg.al_rounds
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from skactiveml.classifier import SklearnClassifier
    rng = np.random.default_rng(seed)
    y = np.full(len(pool_y), np.nan)
    query = _query_strategy(strategy, seed)
    clf = SklearnClassifier(light_classifier(seed), classes=np.arange(n_classes), random_state=seed)
    out = Session(strategy, seed)
    with threadpool_limits(limits=1), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if strategy == "typiclust":   # a cold-start strategy: it picks the first labels too
            start = query.query(features, y, batch_size=initial)
        else:
            start = rng.choice(len(pool_y), size=initial, replace=False)
        y[start] = pool_y[start]      # the simulated annotator answers from the held-back truth
        for step in range(rounds + 1):
            clf.fit(features, y)
            labelled = np.flatnonzero(~np.isnan(y))
            out.n_labels.append(len(labelled))
            out.labelled.append(labelled)
            out.val_accuracy.append(float((clf.predict(val_features) == val_y).mean()))
            if step == rounds or len(labelled) == len(y):
                break
            take = min(batch, len(y) - len(labelled))
            if strategy in UNCERTAINTY:
                chosen = query.query(features, y, clf, fit_clf=False, batch_size=take)
            else:
                chosen = query.query(features, y, batch_size=take)
            y[chosen] = pool_y[chosen]
    return out


def full_label_accuracy(features: np.ndarray, pool_y: np.ndarray, val_features: np.ndarray, val_y: np.ndarray,
                        seed: int) -> float:
    """Accuracy of the same light classifier trained on every pool label."""
    with threadpool_limits(limits=1):
        model = light_classifier(seed).fit(features, pool_y)
        return float((model.predict(val_features) == val_y).mean())


def labels_to_reach(s: Session, target: float) -> float:
    """Labels asked for when validation accuracy first reaches ``target`` (NaN: never)."""
    hit = np.flatnonzero(np.asarray(s.val_accuracy) >= target)
    return float(s.n_labels[hit[0]]) if len(hit) else float("nan")


def reach_table(sessions: dict[str, list[Session]], target: float) -> pd.DataFrame:
    """Per strategy: labels to reach the target, median and range over seeds, how many seeds
    reached it, and the mean area under the validation curve (the tie-break)."""
    rows = {}
    for strategy, runs in sessions.items():
        reached = np.array([labels_to_reach(s, target) for s in runs])
        ok = reached[np.isfinite(reached)]
        # a session that never reached the target counts as "more than the budget": the median is
        # defined when over half reached it (np.median over the NaNs would be NaN whatever the count)
        median = float(np.median(np.where(np.isfinite(reached), reached, np.inf)))
        rows[strategy] = {"median": median if np.isfinite(median) else np.nan,
                          "min": float(ok.min()) if len(ok) else np.nan, "max": float(ok.max()) if len(ok) else np.nan,
                          "reached": f"{len(ok)} of {len(runs)}",
                          "curve_mean": float(np.mean([np.mean(s.val_accuracy) for s in runs]))}
    return pd.DataFrame.from_dict(rows, orient="index")   # by row: the number columns stay numbers


def choose_strategy(table: pd.DataFrame) -> str:
    """Fewest labels (median over seeds) to the target on validation; ties: the higher curve."""
    ranked = table.assign(key=table["median"].astype(float).fillna(np.inf)).sort_values(
        ["key", "curve_mean"], ascending=[True, False])
    return str(ranked.index[0])


def test_at_budget(features: np.ndarray, pool_y: np.ndarray, test_features: np.ndarray, test_y: np.ndarray,
                   runs: Sequence[Session], budget: float, seed: int) -> float:
    """Test accuracy of the classifier each session had at ``budget`` labels (mean over seeds):
    the chosen strategy's one look at the test split."""
    accs = []
    with threadpool_limits(limits=1):
        for s in runs:
            step = int(np.searchsorted(s.n_labels, budget))
            rows = s.labelled[min(step, len(s.labelled) - 1)]
            model = light_classifier(seed).fit(features[rows], pool_y[rows])
            accs.append(float((model.predict(test_features) == test_y).mean()))
    return float(np.mean(accs))


# --- auto-labelling with noisy labels ------------------------------------------------------------
def lookalikes(embeddings: np.ndarray, labels: np.ndarray, n_classes: int) -> np.ndarray:
    """Each brand's nearest other brand (cosine of the mean embeddings): where a labeller errs."""
    unit = embeddings / np.linalg.norm(embeddings, axis=1, keepdims=True)
    centres = np.stack([unit[labels == c].mean(0) for c in range(n_classes)])
    centres /= np.linalg.norm(centres, axis=1, keepdims=True)
    sim = centres @ centres.T
    np.fill_diagonal(sim, -np.inf)
    return sim.argmax(1)


def inject_noise(labels: np.ndarray, n_classes: int, rate: float, lookalike_share: float, nearest: np.ndarray,
                 seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Labels with a ``rate`` share made wrong: ``lookalike_share`` of them to the brand's
    look-alike, the rest to a random other brand. Returns the noisy labels and which changed."""
    rng = np.random.default_rng(seed)
    noisy = labels.copy()
    flip = rng.choice(len(labels), size=int(round(rate * len(labels))), replace=False)
    for i in flip:
        if rng.random() < lookalike_share:
            noisy[i] = nearest[labels[i]]
        else:
            noisy[i] = rng.choice([c for c in range(n_classes) if c != labels[i]])
    return noisy, noisy != labels


def out_of_fold(features: np.ndarray, labels: np.ndarray, groups: np.ndarray, n_classes: int, folds: int,
                seed: int, keep: np.ndarray | None = None) -> np.ndarray:
    """Class probabilities of every pool image from a classifier that never saw its product model
    (folds by model); ``keep``: the rows the classifiers may train on."""
    keep = np.ones(len(labels), bool) if keep is None else keep
    probs = np.zeros((len(labels), n_classes))
    with threadpool_limits(limits=1):
        for fit_rows, score_rows in GroupKFold(n_splits=folds).split(features, labels, groups):
            fit_rows = fit_rows[keep[fit_rows]]
            model = light_classifier(seed).fit(features[fit_rows], labels[fit_rows])
            probs[np.ix_(score_rows, model.classes_)] = model.predict_proba(features[score_rows])
    return probs


def find_suspects(noisy: np.ndarray, probs: np.ndarray) -> np.ndarray:
    """cleanlab's confident-learning filter: the labels it believes wrong (bool per row)."""
    from cleanlab.filter import find_label_issues

    return np.asarray(find_label_issues(labels=noisy, pred_probs=probs), dtype=bool)


def coverage_curve(probs: np.ndarray, truth: np.ndarray, levels: Sequence[float]) -> pd.DataFrame:
    """Auto-label the most confident share of the pool: accuracy against the truth at each share."""
    order = np.argsort(-probs.max(1), kind="stable")
    right = probs.argmax(1)[order] == truth[order]
    rows = [{"coverage": c, "accuracy": float(right[:max(1, int(round(c * len(order))))].mean())} for c in levels]
    return pd.DataFrame(rows)
