"""The search task: its stages, in the order the notebook and ``python -m cvtasks run search``
call them. Choices (the ranker, the towers, the calibration, the no-match threshold) are made on
the validation gallery; the test gallery is scored once, with intervals over queries."""
from __future__ import annotations

import json

import numpy as np
import pandas as pd

from cvtasks.data.course_search import load_image
from cvtasks.io import atomic_write_text
from cvtasks.prose import slug
from cvtasks.search import calibration as C
from cvtasks.search import findings, plots, service
from cvtasks.search import metrics as M
from cvtasks.search.data import (
    SearchData,
    blended_target,
    cross_split_audit,
    load_data,
    rule_relevance,
    similar_across_splits,
    split_files,
)
from cvtasks.search.features import Features, compute_features, embed_texts
from cvtasks.search.keys import KEYS
from cvtasks.search.results import (
    Calibration,
    Evaluation,
    Fitted,
    NoMatchResult,
    Selection,
    add_blend,
    equal_weights,
)
from cvtasks.search.training import VOTE_FREE, VOTE_TRAINED, fit_all
from cvtasks.stats import Interval
from cvtasks.task import Task, stage

HEADLINE = ("ndcg@10", "kendall_tau", "recall@1", "recall@5", "recall@10", "mrr")


class SearchTask(Task):
    """Text -> image relevance (0..1) and a search with a "no good match" answer."""

    name = "search"
    stages = ("data", "features", "models", "select", "evaluate", "calibrate", "nomatch", "demo")
    prose = findings
    keys = KEYS

    # --- helpers ---------------------------------------------------------------------------
    def _scores(self, split: str) -> dict[str, np.ndarray]:
        """Every model's (queries, gallery) scores on a gallery (all its queries), computed once."""
        fitted, feats = self.models_, self.features_
        if split not in fitted.scores:
            fitted.scores[split] = {name: m.score_gallery(feats.gallery[split], feats.queries[split])
                                    for name, m in fitted.scorers.items()}
        return fitted.scores[split]

    def _ranker_scores(self, split: str) -> np.ndarray:
        """The served ranker's scores on a gallery (the blend's where the blend was chosen)."""
        return self.select_.with_blend(self._scores(split))[self.select_.ranker]

    def _per_query(self, split: str, kind: str, scores: dict[str, np.ndarray]) -> dict[str, pd.DataFrame]:
        g = getattr(self.data_, split)
        rows = np.flatnonzero(g.queries.kind == kind)
        gains = g.gains(g.queries.iloc[rows])
        return {name: M.per_query(s[rows], gains, self.cfg.strict_relevance) for name, s in scores.items()}

    # --- stages ------------------------------------------------------------------------------
    @stage
    def data(self) -> SearchData:
        """The training pairs and the two galleries; the leakage audit; split.json."""
        cfg = self.cfg
        d = self.data_ = load_data(cfg)
        audit = cross_split_audit(d)
        self.record(audit)
        before = d.built.get("without these steps", {})
        self.record({"data/duplicates_removed": d.built.get("duplicates removed", 0),
                     "data/before/cross_split_duplicates": before.get("test drawings with a duplicate in training", 0),
                     "data/before/cross_split_queries": before.get("test query texts that are training texts", 0)})
        counts = {"train images": len(d.train_images), "train pairs": len(d.train),
                  "train queries": d.train.query_id.nunique()}
        for g in (d.val, d.test):
            counts[f"{g.split} images"] = len(g.images)
            counts.update({f"{g.split} {k} queries": int((g.queries.kind == k).sum()) for k in ("new", "seen", "nomatch")})
        self.record({f"data/{slug(k)}": v for k, v in counts.items()})
        path = cfg.paths.reports / "search" / ("quick" if cfg.quick else "") / "split.json"
        atomic_write_text(path, json.dumps(split_files(d), indent=1) + "\n")
        self.show("data/counts", pd.Series(counts, name="count").to_frame())
        self.show("data/audit", findings.audit_table(self.metrics))
        sample = d.test.of_kind("new").drop_duplicates("image").sample(min(8, len(d.test.images)), random_state=cfg.seed)
        self.show("data/samples", plots.grid([load_image(d.test.folder / n) for n in sample.image],
                                             [t[:28] for t in sample.query_text]))
        target = blended_target(d.train, cfg.crowd_weight)
        self.show("data/target", plots.target_figure(target, d.train, d.train.query_id.str.rsplit("#", n=1).str[0]
                                                     == d.train.image))
        self.tracker.log_artifact("search-split", "dataset", [path], metadata={"root": str(d.root), **counts})
        return d

    @stage
    def features(self) -> Features:
        """Frozen image and sentence vectors of every image and query (cached)."""
        self.require("data")
        self.features_ = compute_features(self.cfg, self.data_, self.device)
        self.record({"data/cross_split_similar_vectors": similar_across_splits(
            {"train": self.features_.train_images, **self.features_.gallery}, self.cfg.near_duplicate_cosine)})
        self.record({"features/image_dim": self.features_.train_images.shape[1],
                     "features/text_dim": self.features_.train_queries.shape[1]})
        return self.features_

    @stage
    def models(self) -> Fitted:
        """Every scorer on the training pairs: a dummy, ridge, an MLP and the interaction MLP on the
        votes; the ridge-mapped cosine and contrastive towers on (query, own image) pairs only."""
        self.require("features")
        target = blended_target(self.data_.train, self.cfg.crowd_weight)
        scorers, priors = fit_all(self.cfg, self.data_, self.features_, target, self.device)
        self.models_ = Fitted(scorers, priors)   # a re-run fits, and scores, again
        for name in ("mlp", "interaction"):
            self.tracker.log_history(name, scorers[name].history.epochs)
        self.record({f"models/{n}/best_epoch": scorers[n].history.best_epoch for n in ("mlp", "interaction")})
        self.show("models/towers", priors.towers.sort_values("val/loss").round(4))
        self.show("models/curves", plots.curves({n: scorers[n].history for n in ("mlp", "interaction")}))
        return self.models_

    @stage
    def select(self) -> Selection:
        """On the validation gallery's new queries: each model's NDCG@10, the best vote-free ranker,
        a blend of the best of each kind, and the served ranker (the best of all)."""
        self.require("models")
        val = self._per_query("val", "new", self._scores("val"))
        ndcg = {n: float(v["ndcg@10"].mean()) for n, v in val.items()}
        best_free = max(VOTE_FREE, key=ndcg.get)
        parts = (max(("linear", "mlp", "interaction"), key=ndcg.get), best_free)
        val.update(self._per_query("val", "new", {"blend": add_blend(self._scores("val"), parts)["blend"]}))
        ndcg["blend"] = float(val["blend"]["ndcg@10"].mean())
        ranker = max(ndcg, key=ndcg.get)
        self.record({"search/ranker": ranker, "search/vote_free": best_free,
                     **{f"new_queries/{n}/val/ndcg@10": v for n, v in ndcg.items()}})
        table = pd.DataFrame({n: {m: float(v[m].mean()) for m in ("ndcg@10", "recall@5", "kendall_tau")}
                              for n, v in val.items()}).T
        table["trained on"] = ["votes" if n in VOTE_TRAINED else "no votes" if n in VOTE_FREE else "both"
                               for n in table.index]
        self.show("select/validation", table.sort_values("ndcg@10", ascending=False).round(3)
                  .fillna("undefined (constant scores)"))   # Kendall's tau of a constant ranking
        self.select_ = Selection(table, ranker, best_free, parts)
        return self.select_

    @stage
    def evaluate(self) -> Evaluation:
        """The test gallery, once: new queries (the headline), seen queries (a diagnostic), every
        model with intervals over queries, each against the best vote-free ranker (paired), and
        the voted pairs' MAE / RMSE / R2."""
        self.require("select")
        cfg, chosen = self.cfg, self.select_
        scores = chosen.with_blend(self._scores("test"))
        test = self._per_query("test", "new", scores)
        rows = {}
        for name, per in test.items():
            ivs = M.ranking_intervals(per, resamples=cfg.resamples, seed=cfg.seed)
            self.record(M.flatten(f"new_queries/{name}/test/", ivs))
            rows[name] = {m: ivs[m] for m in HEADLINE if m in ivs}
            if name != chosen.vote_free:
                delta = M.paired_delta(per, test[chosen.vote_free], "ndcg@10", resamples=cfg.resamples, seed=cfg.seed)
                self.record(delta.items(f"new_queries/{name}/test/ndcg@10_delta"))
        ranker = M.ranking_intervals(test[chosen.ranker], resamples=cfg.resamples, seed=cfg.seed)
        self.record(M.flatten("new_queries/test/", ranker))
        self.record(M.flatten("new_queries/vote_free/test/", M.ranking_intervals(
            test[chosen.vote_free], resamples=cfg.resamples, seed=cfg.seed)))
        if chosen.ranker != chosen.vote_free:
            delta = M.paired_delta(test[chosen.ranker], test[chosen.vote_free], "ndcg@10", resamples=cfg.resamples,
                                   seed=cfg.seed)
        else:
            delta = Interval(0.0, 0.0, 0.0)
        self.record(delta.items("new_queries/test/ndcg@10_delta"))
        seen = self._per_query("test", "seen", scores)
        for name, per in seen.items():
            if len(per):
                self.record(M.flatten(f"seen_queries/{name}/test/", M.ranking_intervals(
                    per, resamples=cfg.resamples, seed=cfg.seed), ("ndcg@10", "kendall_tau")))
        self._pair_metrics(scores)
        table = findings.model_table(rows, chosen.ranker, chosen.vote_free)
        self.show("evaluate/models", plots.model_intervals(rows, chosen.ranker))
        self.show("evaluate/table", table)
        self.evaluate_ = Evaluation(table, scores, test)
        return self.evaluate_

    def _pair_metrics(self, scores: dict[str, np.ndarray]) -> None:
        """MAE / RMSE / R2 on the test gallery's voted pairs of new queries, for the models that
        predict the votes' 0..1 target (the vote-trained ones); the headline is the one with the
        best validation R2."""
        cfg, g = self.cfg, self.data_.test
        new = np.flatnonzero(g.queries.kind == "new")
        pairs = g.pairs(g.queries.iloc[new], recipe=True)
        q, j = new[pairs.query_row.to_numpy()], pairs.image_row.to_numpy()
        vg, val_new = self.data_.val, np.flatnonzero(self.data_.val.queries.kind == "new")
        vpairs = vg.pairs(vg.queries.iloc[val_new], recipe=True)
        vscores = self._scores("val")
        val_r2 = {}
        for name in ("dummy", "linear", "mlp", "interaction"):
            ivs = M.pair_intervals(scores[name][q, j], pairs.target.to_numpy(), q, resamples=cfg.resamples,
                                   seed=cfg.seed)
            self.record(M.flatten(f"{name}/test/", ivs))
            vp = vscores[name][val_new[vpairs.query_row.to_numpy()], vpairs.image_row.to_numpy()]
            val_r2[name] = M.r2(vp, vpairs.target.to_numpy())
            self.record({f"{name}/val/r2": val_r2[name]})
        best = max(val_r2, key=val_r2.get)
        self.record({"pairs/model": best, **{k.split("/", 1)[1]: v for k, v in self.metrics.items()
                                             if k.startswith(f"{best}/test/")}})
        rel = rule_relevance(self.data_, "test", pairs)
        if rel is not None:   # a perfect follower of the rule that made the votes: the ceiling
            ivs = M.pair_intervals(rel, pairs.target.to_numpy(), q, resamples=cfg.resamples, seed=cfg.seed)
            self.record(M.flatten("ceiling/test/", ivs))
            every = g.pairs(g.queries.iloc[new])
            rule_scores = np.zeros_like(scores[self.select_.ranker][new])
            rule_scores[every.query_row.to_numpy(), every.image_row.to_numpy()] = rule_relevance(self.data_, "test", every)
            ceiling = M.per_query(rule_scores, g.gains(g.queries.iloc[new]), cfg.strict_relevance)
            self.record({"ceiling/test/ndcg@10": float(ceiling["ndcg@10"].mean())})

    @stage
    def calibrate(self) -> Calibration:
        """Isotonic regression of the votes' target on the ranker's score, fitted on the validation
        gallery's voted pairs; its reliability on the test gallery's."""
        self.require("evaluate")
        cfg, d = self.cfg, self.data_
        val_pairs, val_scores = C.voted_pairs(d.val, self._ranker_scores("val"))
        calibrator = C.fit_calibrator(val_scores, val_pairs.target.to_numpy())
        test_pairs, test_scores = C.voted_pairs(d.test, self.evaluate_.scores[self.select_.ranker])
        target = test_pairs.target.to_numpy()
        pred, scaled = calibrator.predict(test_scores), C.min_max(test_scores, val_scores)
        table = C.reliability(pred, target, cfg.calibration_bins)
        raw = C.reliability(scaled, target, cfg.calibration_bins)
        self.record({"calibration/test/ece": C.ece(pred, target, cfg.calibration_bins),
                     "calibration/test/ece_uncalibrated": C.ece(scaled, target, cfg.calibration_bins),
                     "calibration/test/pairs": len(pred)})
        self.show("calibration/reliability", plots.reliability({"calibrated on validation": table,
                                                                "raw score, min-max scaled": raw}))
        self.calibrate_ = Calibration(table, calibrator)
        return self.calibrate_

    @stage
    def nomatch(self) -> NoMatchResult:
        """When to answer "no good match": a statistic of how clearly the best drawing stands out
        and its threshold, both chosen on validation for the target precision; tested on the test
        gallery with the queries of held-out categories."""
        self.require("calibrate")
        cfg, d = self.cfg, self.data_
        null = self.features_.queries["val"][(d.val.queries.kind == "nomatch").to_numpy()]
        gallery_text, splits = {}, {}
        ranked = {"val": self._ranker_scores("val"), "test": self.evaluate_.scores[self.select_.ranker]}
        for split, scores in ranked.items():
            splits[split], texts = C.nomatch_split(getattr(d, split).queries, self.features_.queries[split], scores,
                                                   self.calibrate_.calibrator, null, cfg.nomatch_text_ks)
            if texts is not None:
                gallery_text[split] = texts
        val, test = splits["val"], splits["test"]
        if not val.absent.any():
            self.nomatch_ = NoMatchResult(None, gallery_text, {})
            self.show("nomatch/none", "*No query without a match in the validation gallery: the threshold cannot "
                                      "be chosen (the embedded build holds out whole categories for that).*")
            return self.nomatch_
        choice = C.choose_statistic(val.statistics, val.absent, cfg.nomatch_precision, cfg.nomatch_prevalence)
        quality = C.nomatch_quality(test.statistics[choice.statistic], test.absent, choice.threshold,
                                    cfg.nomatch_prevalence, test.drawings, count=cfg.resamples, seed=cfg.seed)
        val_quality = C.nomatch_quality(val.statistics[choice.statistic], val.absent, choice.threshold,
                                        cfg.nomatch_prevalence)
        self.record({"nomatch/statistic": choice.statistic, "nomatch/threshold": choice.threshold,
                     "nomatch/prevalence": cfg.nomatch_prevalence,
                     **{f"nomatch/val/{k}": v for k, v in val_quality.items()},
                     **{f"nomatch/test/{k}": v for k, v in quality.items()}})
        per_stat = {name: C.choose_nomatch(v, val.absent, cfg.nomatch_precision, cfg.nomatch_prevalence)
                    for name, v in val.statistics.items()}
        self.show("nomatch/statistics", pd.DataFrame({n: {"threshold": c.threshold, "val precision": c.precision,
                                                          "val recall": c.recall, "val ROC-AUC": C.nomatch_quality(
                                                              val.statistics[n], val.absent, c.threshold,
                                                              cfg.nomatch_prevalence)["roc_auc"]}
                                                      for n, c in per_stat.items()}).T
                  .map(lambda v: f"{v:.3g}"))   # significant digits: a threshold of 2e-4 is not 0.000
        keys = ("precision", "recall", "roc_auc")
        interval = {k: f"[{quality[k + '_ci_low']:.3f}, {quality[k + '_ci_high']:.3f}]" if k + "_ci_low" in quality
                    else "-" for k in keys}
        self.show("nomatch/table", pd.DataFrame({"validation": {k: val_quality[k] for k in keys},
                                                 "test": {k: quality[k] for k in keys}}).round(3)
                  .assign(**{"test, 95 % interval": pd.Series(interval)}))
        self.show("nomatch/scores", plots.nomatch_figure(test.statistics[choice.statistic], test.absent,
                                                         choice.threshold, choice.statistic))
        self.nomatch_ = NoMatchResult(choice, gallery_text, quality)
        return self.nomatch_

    @stage
    def demo(self) -> service.Bundle:
        """The served search: saved for ``python -m cvtasks search``; test queries it serves well and
        badly, a few free-text queries, and queries with nothing to find."""
        self.require("nomatch")
        cfg, d, chosen, nomatch = self.cfg, self.data_, self.select_, self.nomatch_
        parts = chosen.blend_parts if chosen.ranker == "blend" else (chosen.ranker,)
        titles = d.test.titles()
        bundle = service.Bundle(ranker=chosen.ranker, scorers={p: self.models_.scorers[p] for p in parts},
                                weights=equal_weights(parts), calibrator=self.calibrate_.calibrator,
                                threshold=nomatch.choice.threshold if nomatch.choice else -np.inf,
                                statistic=nomatch.choice.statistic if nomatch.choice else "best",
                                gallery=self.features_.gallery["test"], files=d.test.images,
                                titles=[titles.get(n, n) for n in d.test.images], folder=str(d.test.folder),
                                text_encoder=cfg.text_encoder, texts=nomatch.gallery_text.get("test"))
        path = service.save(bundle, service.bundle_path(cfg))
        self.tracker.log_artifact("search-ranker", "model", [path], metadata={"ranker": chosen.ranker})
        per = self.evaluate_.per_query[chosen.ranker]
        new = d.test.of_kind("new")
        order = per["ndcg@10"].to_numpy().argsort()
        vectors = self.features_.queries["test"]
        rows = np.flatnonzero(d.test.queries.kind == "new")
        for label, picks in (("served well", order[::-1][:2]), ("served badly", order[:2])):
            for i in picks:
                self.show(f"demo/{slug(label)}", plots.hits(
                    d.test, bundle, vectors[[rows[i]]], f'{label}: "{new.query_text.iloc[i][:60]}"',
                    own=new.image.iloc[i]))
        free = embed_texts(cfg, list(cfg.demo_queries))
        for k, q in enumerate(cfg.demo_queries):   # the title says whether the gallery has such a drawing
            n = d.test.described(q)
            self.show("demo/free_text", plots.hits(d.test, bundle, free[[k]], f'"{q}" ({n} test drawing'
                                                   f'{"s" * (n != 1)} described with these words)'))
        for i in np.flatnonzero(d.test.queries.kind == "nomatch")[:2]:
            self.show("demo/nomatch", plots.hits(d.test, bundle, vectors[[i]],
                                                 f'nothing to find: "{d.test.queries.query_text.iloc[i][:60]}"'))
        self.demo_ = bundle
        return bundle

