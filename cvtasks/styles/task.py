"""The styles task: its stages, in the order the notebook and ``python -m cvtasks run styles``
call them. The science lives beside it (estimation, structure, experiments, avatars); the
figures in plots; the prose of the summary and conclusions in findings."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from cvtasks.data.styles import StyleData, ground_truth, load_styles
from cvtasks.io import atomic_write_text
from cvtasks.models.bayesnet import BayesNet, decode, encode, save_json
from cvtasks.prose import slug
from cvtasks.runtime import progress_bar
from cvtasks.styles import avatars as A
from cvtasks.styles import experiments as X
from cvtasks.styles import findings, plots
from cvtasks.styles import structure as G
from cvtasks.styles.estimation import (
    bayes_rule,
    counts,
    dependency_table,
    fit_model,
    style_probability,
    total_probability_check,
)
from cvtasks.styles.keys import KEYS
from cvtasks.styles.seeds import over_seeds, spread
from cvtasks.task import Task, stage


@dataclass
class Styles:
    """The table, its integer codes, the row split and, for the embedded data, the truth."""

    raw: StyleData
    codes: np.ndarray
    split: X.RowSplit
    truth: BayesNet | None

    @property
    def schema(self) -> dict[str, tuple[str, ...]]:
        return self.raw.schema


@dataclass
class Structure:
    edges: list[tuple[str, str]]         # the skeleton learned from all training rows
    draws: list                          # the training subsets of the curves
    skeletons: list                      # the skeleton learned from each subset
    curve: pd.DataFrame                  # SHD and edge count per size (summarised)
    parents: dict[str, str | None] | None = None   # directed on validation by .prior()


@dataclass
class Prior:
    strength: float
    table: pd.DataFrame                  # validation log-likelihood per strength
    validity: pd.DataFrame               # validity of sampled styles per strength
    model: BayesNet                      # the style model every later stage samples from


class StylesTask(Task):
    """Style generator (MLE, Bayes, a learned structure) and avatar generator."""

    name = "styles"
    stages = ("data", "estimates", "structure", "prior", "heldout", "generate", "avatars", "avatar_experiments",
              "seeds")
    prose = findings
    keys = KEYS

    @stage
    def data(self) -> Styles:
        """Reads the styles table (and avatars); splits its rows into train / validation / test."""
        cfg = self.cfg
        raw = load_styles(cfg)
        codes = encode(raw.table, raw.schema)
        split = X.split_rows(len(codes), cfg.val_fraction, cfg.test_fraction, cfg.seed)
        self.data_ = Styles(raw, codes, split, ground_truth() if cfg.styles_csv is None else None)
        self.record({"data/n_people": len(codes), "data/n_train": len(split.train), "data/n_val": len(split.val),
                     "data/n_test": len(split.test), "data/n_attributes": len(raw.schema),
                     "data/n_options": sum(len(o) for o in raw.schema.values())})
        table_csv = cfg.paths.data / "styles" / ("quick" if cfg.quick else "full") / "styles.csv"
        atomic_write_text(table_csv, raw.table.to_csv(index=False))
        self.tracker.log_artifact("styles-table", "dataset", [table_csv],
                                  metadata={"source": raw.source, "rows": len(codes),
                                            "avatars": None if raw.images is None else list(raw.images.shape)})
        self.show("data/options", pd.DataFrame({"options": {a: len(o) for a, o in raw.schema.items()},
                                                "used in the table": raw.table.nunique()}))
        if raw.images is not None:
            titles = [f"{r.hairstyle[:13]}\n{r.hair_colour}" if "hairstyle" in raw.table else str(i)
                      for i, r in enumerate(raw.table.head(12).itertuples())]
            self.show("data/avatars", plots.avatar_rows({"avatars of\nthe table": raw.images[:12]}, titles,
                                                        caption="the first rows of the table: hairstyle / hair colour"))
        return self.data_

    @stage
    def estimates(self) -> dict[str, pd.DataFrame]:
        """MLE against the Dirichlet estimate from a small sample of training rows; a conditional,
        the law of total probability and Bayes' rule on the strongest pair of attributes."""
        self.require("data")
        d, cfg = self.data_, self.cfg
        train = d.codes[d.split.train]
        small = train[:cfg.estimate_sample]
        mi = dependency_table(train, d.schema)
        pair = mi.where(~np.eye(len(mi), dtype=bool)).stack().idxmax()   # (parent, child) by MI
        attrs = [a for a in d.schema if len(d.schema[a]) > 2][:2]
        fig = plots.distributions(small, d.schema, attrs, cfg.illustration_prior, d.truth)
        self.show("styles/distributions", fig)
        zeros = sum(int((counts(small[:, j], len(o)) == 0).sum()) for j, o in enumerate(d.schema.values()))
        parent, child = sorted(pair, key=lambda a: -len(d.schema[a]))
        mle_pair = fit_model(train, d.schema, {**{a: None for a in d.schema}, child: parent}, "mle")
        post = pd.DataFrame(bayes_rule(mle_pair.tables[child], mle_pair.marginal(parent)),
                            index=d.schema[child], columns=d.schema[parent])
        self.show("styles/conditionals", plots.conditionals(plots.conditional_frame(mle_pair, child), post,
                                                             parent, child))
        check = total_probability_check(train, d.schema, parent, child)
        self.record({"estimates/sample": len(small), "estimates/mle_zero_options": zeros,
                     "estimates/total_probability_max_diff": float((check.direct - check.total_probability).abs().max())})
        self.show("styles/total_probability", check.round(4).T)
        self.estimates_ = {"mutual_information": mi, "total_probability": check}
        return self.estimates_

    @stage
    def structure(self) -> Structure:
        """Learns which attributes depend on which (BDeu forest) from all training rows and from
        subsets of them, and compares each with the true structure."""
        self.require("data")
        d, cfg = self.data_, self.cfg
        train = d.codes[d.split.train]
        edges = G.learn_skeleton(train, d.schema, cfg.structure_ess)
        draws = X.subsets(d.split.train, X.training_sizes(len(train), cfg.small_n), cfg.repeats, cfg.seed)
        skeletons, frame = X.learned_skeletons(d.codes, d.schema, draws, ess=cfg.structure_ess, truth=d.truth)
        self.structure_ = Structure(edges, draws, skeletons, X.summarise(frame))
        self.record({"structure/learned_edges": len(edges), "structure/n_full": len(train),
                     "structure/ess": cfg.structure_ess})
        if d.truth is not None:
            self.record({"structure/shd_at_n_full": G.shd(edges, d.truth.parents),
                         "structure/true_edges": len(d.truth.edges)})
        self.show("styles/mutual_information", plots.mutual_information(dependency_table(train, d.schema)))
        undirected = G.rooted(edges, list(d.schema), {})
        self.show("styles/structure", plots.structure_figure(self.structure_.curve, undirected,
                                                             d.truth.parents if d.truth else None))
        return self.structure_

    @stage
    def prior(self) -> Prior:
        """Chooses the prior strength (and the learned edges' directions) on validation rows; the
        model every later stage samples from is the Bayes model with that strength."""
        self.require("data", "structure")
        d, cfg = self.data_, self.cfg
        train = d.codes[d.split.train]
        strength, parents, table = X.choose_prior(d.codes, d.schema, d.split, self.structure_.edges,
                                                  cfg.prior_strengths)
        self.structure_.parents = parents
        validity = X.validity_by_strength(train, d.schema, parents, cfg.prior_strengths,
                                          n_samples=cfg.n_style_samples, seed=cfg.seed, truth=d.truth)
        self.prior_ = Prior(strength, table, validity, fit_model(train, d.schema, parents, "bayes", strength))
        path = save_json(self.prior_.model, cfg.paths.models / "styles" / ("quick" if cfg.quick else "full")
                         / "style_model.json")
        self.tracker.log_artifact("styles-model", "model", [path],
                                  metadata={"prior_strength": strength, "edges": G.edge_list(parents)})
        self.record({"avatars/prior_strength": strength, "styles/prior/val_ll": float(table.val_ll.max())})
        if d.truth is not None:   # directions are chosen here, on validation: the skeleton's SHD cannot see them
            self.record({"structure/reversed_edges": G.reversed_edges(parents, d.truth.parents)})
        self.show("styles/prior_strength", plots.prior_plot(table, validity, strength))
        self.show("styles/learned_edges", pd.DataFrame({
            "learned (directions on validation)": [G.edge_list(parents)],
            "true": [G.edge_list(d.truth.parents) if d.truth else "unknown"]}, index=[f"n = {len(train)}"]))
        return self.prior_

    @stage
    def heldout(self) -> pd.DataFrame:
        """Test log-likelihood and KL of the independent, learned and true structures, MLE and
        Bayes, against the training size; the headline figures at the smallest and full size."""
        self.require("data", "structure", "prior")
        d = self.data_
        frame = X.heldout_curves(d.codes, d.schema, self.structure_.draws, self.structure_.skeletons, d.split,
                                 prior_strength=self.prior_.strength, truth=d.truth)
        summary = X.summarise(frame)
        self.heldout_ = summary
        sizes = sorted(summary.n.unique())
        for n, tag in ((sizes[0], "small"), (sizes[-1], "full")):
            self.record({f"styles/n_{tag}": n})
            for row in summary[summary.n == n].itertuples():
                prefix = f"styles/{tag}/{row.structure}/{row.method}"
                self.record({f"{prefix}/zero_rate": row.zero_rate, f"{prefix}/heldout_ll_inf_share": row.heldout_ll_inf_share,
                             f"{prefix}/heldout_ll": row.heldout_ll if np.isfinite(row.heldout_ll) else np.nan,
                             f"{prefix}/heldout_ll_seen": row.heldout_ll_seen, f"{prefix}/kl": row.kl,
                             f"{prefix}/kl_inf_share": row.kl_inf_share})
        self.show("styles/learning_curves", plots.learning_curves(summary))
        bayes = summary[summary.method == "bayes"]
        self.chart("curves", "styles/heldout_ll_by_n", sizes,
                   {name: g.sort_values("n").heldout_ll.tolist() for name, g in bayes.groupby("structure")},
                   xname="training rows n")
        cols = ["structure", "method", "n", "heldout_ll", "heldout_ll_seen", "zero_rate", "kl", "kl_inf_share"]
        shown = summary[summary.n.isin([sizes[0], sizes[-1]])][cols].round(3)
        # MLE gives probability 0 to styles it never saw: their log-likelihood and KL are -inf / inf
        self.show("styles/heldout", shown.fillna({"heldout_ll": "-inf (zero-probability rows)",
                                                  "kl": "inf (zero-probability styles)"}))
        return summary

    @stage
    def generate(self) -> pd.DataFrame:
        """New styles from the independent, learned and true structures: novelty and validity;
        the probability each model gives a few telling styles."""
        self.require("data", "prior")
        d, cfg = self.data_, self.cfg
        train = d.codes[d.split.train]
        structures = {"independent": None, "learned": self.structure_.parents}
        if d.truth is not None:
            structures["true"] = d.truth.parents
        table = X.generation(train, d.schema, structures, n_samples=cfg.n_style_samples,
                             prior_strength=self.prior_.strength, seed=cfg.seed, truth=d.truth)
        for r in table.itertuples():
            for col in ("novelty", "distinct", "validity"):
                self.record({f"styles/generate/{r.structure}_{r.method}/{col}": getattr(r, col)})
        self.show("styles/generation", table.round(3))
        self.show("styles/samples", decode(self.prior_.model.sample(6, np.random.default_rng(cfg.seed)), d.schema))
        examples = findings.telling_styles(d.schema)
        if examples:
            models = {f"{m} / {k}": fit_model(train, d.schema, p, m, self.prior_.strength)
                      for k, p in structures.items() for m in ("mle", "bayes")}
            if d.truth is not None:
                models["truth"] = d.truth
            probs = pd.DataFrame({name: {k: style_probability(mod, v) for k, v in examples.items()}
                                  for name, mod in models.items()})
            self.show("styles/style_probabilities", probs.map(lambda p: f"{p:.2e}"))
        self.generate_ = table
        return table

    @stage
    def avatars(self) -> A.AvatarResult:
        """The palette and per-pixel colour distributions of the training avatars, three avatar
        generators conditioned on styles from the chosen model, and their measurements."""
        self.require("data", "prior")
        d, cfg = self.data_, self.cfg
        if d.raw.images is None:
            raise ValueError("the styles table has no avatars (set StylesConfig.avatars_dir); the avatar stages need them")
        res = A.avatar_experiment(d.raw.images, d.codes, d.schema, self.structure_.parents, self.prior_.model,
                                  d.split.train, d.split.test, cfg)
        self.avatars_ = res
        metrics = {f"avatars/classifier_heldout_acc/{a}": v for a, v in res.heldout_accuracy.items()}
        metrics["avatars/real_nn_distance"] = res.real_nn_distance
        metrics["avatars/distinct_colours"] = A.distinct_colours(d.raw.images)
        for method, row in res.table.iterrows():
            if method in A.METHODS:
                metrics.update({f"avatars/{method}/{k}": float(v) for k, v in row.items()})
        if d.truth is not None:   # styles the generator draws that no person could have
            train = d.codes[d.split.train]
            metrics["avatars/invalid_rate"] = X.invalid_rate(d.truth, self.prior_.model, cfg.n_style_samples, cfg.seed)
            metrics["avatars/invalid_rate_a1"] = X.invalid_rate(
                d.truth, fit_model(train, d.schema, self.structure_.parents, "bayes", 1.0), cfg.n_style_samples, cfg.seed)
            metrics["avatars/invalid_shown"] = 1 - X.validity(d.truth, res.styles)
        self.record(metrics)
        self.show("avatars/pixel_maps", plots.pixel_maps(res.pixel_model.global_probs, res.palette))
        shown = decode(res.styles[:10], d.schema)
        titles = [findings.style_title(r) for r in shown.to_dict("records")]
        rows = {"(a) independent\npixels": res.generated["a_independent"][:10],
                "(b) pixels given\nthe style": res.generated["b_conditional"][:10],
                "(c) factor model\ngiven the style": res.generated["c_factor"][:10]}
        self.show("avatars/generated", plots.avatar_rows(
            rows, titles, caption="columns: styles sampled from the chosen model"
            + (findings.TITLE_LEGEND if "hairstyle" in d.schema else "")))
        self.show("avatars/measurements", res.table.round(3))
        self.examples("avatars/examples", shown.assign(valid=[X.validity(d.truth, s[None]) for s in res.styles[:10]]),
                      {m: res.generated[m][:10] for m in A.METHODS})
        return res

    @stage
    def avatar_experiments(self) -> dict[str, pd.DataFrame]:
        """Method (b) conditioned on subsets of the attributes, and the palette size."""
        self.require("data", "avatars")
        d, cfg, res = self.data_, self.cfg, self.avatars_
        groups = findings.attribute_groups(d.schema)
        cond = A.conditioning_experiment(res, d.schema, groups, cfg.seed)
        for name, row in cond.iterrows():
            for attr, v in row.items():
                self.record({f"avatars/conditioning/{slug(name)}/{attr}": v})
        palette = A.palette_experiment(d.raw.images[d.split.train], cfg.palette_sizes, cfg.seed)
        for k, row in palette.iterrows():
            self.record({f"avatars/palette/{k}/rmse": row["quantisation RMSE"]})
        self.show("avatars/conditioning", cond.round(2))
        self.show("avatars/palette", palette.round(4).T)
        self.avatar_experiments_ = {"conditioning": cond, "palette": palette}
        return self.avatar_experiments_

    @stage
    def seeds(self) -> pd.DataFrame:
        """The headline figures again at ``seeds`` seeds (each its own generated table, split,
        sampled styles and avatars): their mean with a 95 % interval over seeds; per seed, the
        test log-likelihood's interval over the test rows."""
        self.require("heldout")
        cfg = self.cfg
        per_seed = over_seeds(cfg, progress=lambda seeds: progress_bar(seeds, desc="seeds"))
        table = spread(per_seed)
        self.record({"headline/seeds": len(per_seed)})
        for key, row in table.iterrows():
            self.record({f"headline/{key}": row["mean"], f"headline/{key}_ci_low": row.ci_low,
                         f"headline/{key}_ci_high": row.ci_high})
        own = per_seed.loc[cfg.seed]   # this run's seed: the same model as the heldout stage's full-size one
        self.record({"styles/full/learned/bayes/heldout_ll_ci_low": own.heldout_ll_ci_low,
                     "styles/full/learned/bayes/heldout_ll_ci_high": own.heldout_ll_ci_high})
        self.show("seeds/per_seed", per_seed.round(3))
        self.show("seeds/spread", table.round(3))
        self.seeds_ = per_seed
        return per_seed
