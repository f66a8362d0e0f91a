import json
import math

import numpy as np
import pandas as pd
import pytest
from PIL import Image
from scipy import stats

import config
from cvtasks.data import styles as D
from cvtasks.models.bayesnet import (
    BayesNet,
    decode,
    encode,
    kl_divergence,
    load_json,
    save_json,
)
from cvtasks.styles import StylesTask
from cvtasks.styles import estimation as S
from cvtasks.styles import experiments as X
from cvtasks.styles import structure as G

SCHEMA = {"top": ("bald", "long", "short"), "hair": ("black", "blond", "none")}
PARENTS = {"top": None, "hair": "top"}
# 6 people: bald/none x2, long/black, long/blond x2, short/black
TABLE = pd.DataFrame({"top": ["bald", "bald", "long", "long", "long", "short"],
                      "hair": ["none", "none", "black", "blond", "blond", "black"]})


def codes():
    return encode(TABLE, SCHEMA)


# --- estimators against hand-computed values -------------------------------------------------
def test_mle_and_dirichlet_by_hand():
    c = S.counts(codes()[:, 0], 3)
    assert c.tolist() == [2, 3, 1]
    assert np.allclose(S.mle(c), [2 / 6, 3 / 6, 1 / 6])
    # Laplace: (c + 1) / (6 + 3); strength 0.5: (c + .5) / 7.5
    assert np.allclose(S.posterior_mean(c, 1.0), [3 / 9, 4 / 9, 2 / 9])
    assert np.allclose(S.posterior_mean(c, 0.5), [2.5 / 7.5, 3.5 / 7.5, 1.5 / 7.5])
    # predictive of one observation = posterior mean; of two: Polya urn by hand
    assert math.isclose(S.posterior_predictive_logprob(c, [0, 0, 1], 1.0), math.log(2 / 9))
    assert math.isclose(S.posterior_predictive_logprob(c, [0, 0, 2], 1.0), math.log(2 / 9 * 3 / 10))
    lo, hi = S.posterior_interval(c, 1.0, 0.9)
    assert np.all(lo < S.posterior_mean(c, 1.0)) and np.all(S.posterior_mean(c, 1.0) < hi)


def test_conditional_mle_and_bayes_by_hand():
    x = codes()
    cond = S.conditional(x[:, 1], x[:, 0], 3, 3)
    assert np.allclose(cond, [[0, 0, 1], [1 / 3, 2 / 3, 0], [1, 0, 0]])
    smooth = S.conditional(x[:, 1], x[:, 0], 3, 3, "bayes", 1.0)
    assert np.allclose(smooth[1], [2 / 6, 3 / 6, 1 / 6])


def test_total_probability_and_bayes_rule_identities():
    x = codes()
    p_top = S.mle(S.counts(x[:, 0], 3))
    cond = S.conditional(x[:, 1], x[:, 0], 3, 3)
    direct = S.mle(S.counts(x[:, 1], 3))
    assert np.allclose(S.total_probability(cond, p_top), direct)   # [2/6, 2/6, 2/6]
    post = S.bayes_rule(cond, p_top)   # P(top | hair)
    assert np.allclose(post.sum(1), 1)
    assert np.allclose(post[0], [0, 0.5, 0.5])   # black hair: one long, one short
    # and back again: P(hair | top) from P(top | hair) and P(hair)
    assert np.allclose(S.bayes_rule(post, direct), cond)
    check = S.total_probability_check(x, SCHEMA, "top", "hair")
    assert np.allclose(check["direct"], check["total_probability"])


def test_zero_counts_mle_zero_bayes_positive():
    x = codes()
    mle = S.fit_model(x, SCHEMA, PARENTS, "mle")
    bayes = S.fit_model(x, SCHEMA, PARENTS, "bayes", 1.0)
    unseen = {"top": "short", "hair": "blond"}
    assert S.style_probability(mle, unseen) == 0
    assert S.style_probability(bayes, unseen) == pytest.approx((2 / 9) * (1 / 4))
    # a style never seen as a whole, but whose parts were: zero only under the dependent MLE
    indep = S.fit_model(x, SCHEMA, None, "mle")
    assert S.style_probability(indep, unseen) == pytest.approx(1 / 6 * 2 / 6)
    assert S.style_probability(mle, {"top": "long", "hair": "blond"}) == pytest.approx(3 / 6 * 2 / 3)


def test_kl_exact_and_infinite_for_missing_support():
    truth = D.ground_truth()
    assert kl_divergence(truth, truth) == pytest.approx(0, abs=1e-12)
    sample = truth.sample(200, np.random.default_rng(0))
    bayes = S.fit_model(sample, truth.schema, truth.parents, "bayes", 1.0)
    indep = S.fit_model(sample, truth.schema, None, "bayes", 1.0)
    assert 0 < kl_divergence(truth, bayes) < math.inf
    # Monte Carlo check of the exact KL
    big = truth.sample(200_000, np.random.default_rng(1))
    mc = np.mean(truth.log_prob(big) - bayes.log_prob(big))
    assert kl_divergence(truth, bayes) == pytest.approx(mc, rel=0.05)
    assert kl_divergence(truth, indep) > 0
    rare = S.fit_model(sample[:10], truth.schema, truth.parents, "mle")
    assert kl_divergence(truth, rare) == math.inf


def test_sampler_frequencies_match_the_model():
    truth = D.ground_truth()
    gen = truth.sample(20_000, np.random.default_rng(7))
    j = truth.attributes.index("hairstyle")
    observed = np.bincount(gen[:, j], minlength=len(truth.schema["hairstyle"]))
    assert stats.chisquare(observed, truth.tables["hairstyle"] * len(gen)).pvalue > 0.01
    # the conditional: hair colour among the long straight hair
    h = truth.attributes.index("hair_colour")
    row = list(truth.schema["hairstyle"]).index("long_hair_straight")
    sub = gen[gen[:, j] == row, h]
    expected = truth.tables["hair_colour"][row]
    keep = expected > 0
    obs = np.bincount(sub, minlength=len(expected))
    assert obs[~keep].sum() == 0
    assert stats.chisquare(obs[keep], expected[keep] * len(sub)).pvalue > 0.01


def test_ground_truth_has_its_dependencies():
    truth = D.ground_truth()
    table = D.sample_styles(3000, 0)
    bald = table.hairstyle.isin(["no_hair", "hat", "winter_hat1", "hijab"])
    assert (table.hair_colour[bald] == D.NONE).all() and (table.hair_colour[~bald] != D.NONE).all()
    assert (table.clothes_colour[table.clothes.str.startswith("blazer")] == D.NONE).all()
    assert D.sample_styles(50, 3).equals(D.sample_styles(50, 3))
    mi = S.dependency_table(encode(table, truth.schema), truth.schema)
    assert mi.loc["hairstyle", "hair_colour"] > 10 * mi.loc["hairstyle", "skin"]
    assert np.allclose(truth.marginal("hair_colour"), S.total_probability(truth.tables["hair_colour"],
                                                                          truth.tables["hairstyle"]))


def test_bad_inputs_are_named():
    with pytest.raises(ValueError, match="hair"):
        encode(pd.DataFrame({"top": ["bald"], "hair": ["green"]}), SCHEMA)
    with pytest.raises(ValueError, match="cycle"):
        BayesNet(SCHEMA, {"top": "hair", "hair": "top"}, {"top": np.ones((3, 3)) / 3, "hair": np.ones((3, 3)) / 3})
    with pytest.raises(ValueError, match="prior_strength"):
        S.posterior_mean(np.ones(3), 0)
    with pytest.raises(ValueError, match="shape"):
        BayesNet(SCHEMA, PARENTS, {"top": np.ones(3) / 3, "hair": np.ones(3) / 3})


def test_experiments_show_mle_zeros_and_bayes_coverage():
    truth = D.ground_truth()
    x = truth.sample(300, np.random.default_rng(0))
    split = X.split_rows(len(x), 0.2, 0.2, 0)
    draws = X.subsets(split.train, [10, len(split.train)], 3, 0)
    skeletons, _ = X.learned_skeletons(x, truth.schema, draws, ess=10.0, truth=truth)
    summary = X.summarise(X.heldout_curves(x, truth.schema, draws, skeletons, split, prior_strength=1.0, truth=truth))
    dep = summary[summary.structure == "true"].set_index(["method", "n"])
    full = len(split.train)
    assert dep.loc[("mle", 10), "zero_rate"] > dep.loc[("mle", full), "zero_rate"]
    assert dep.loc[("bayes", 10), "zero_rate"] == 0
    assert dep.loc[("bayes", full), "kl"] < dep.loc[("bayes", 10), "kl"]
    gen = X.generation(x, truth.schema, {"independent": None, "true": truth.parents}, n_samples=2000,
                       prior_strength=1.0, seed=0, truth=truth).set_index(["structure", "method"])
    assert gen.loc[("true", "mle"), "validity"] == 1.0
    assert gen.loc[("independent", "mle"), "validity"] < 0.8


def test_rows_split_three_ways_without_overlap():
    split = X.split_rows(100, 0.2, 0.25, 3)
    parts = [set(split.train), set(split.val), set(split.test)]
    assert [len(p) for p in parts] == [55, 20, 25]
    assert not (parts[0] & parts[1] or parts[0] & parts[2] or parts[1] & parts[2])
    with pytest.raises(ValueError, match="rows"):
        X.split_rows(3, 0.5, 0.5, 0)


# --- structure learning --------------------------------------------------------------------------
def test_bdeu_forest_finds_the_true_skeleton_and_no_more():
    truth = D.ground_truth()
    x = truth.sample(1000, np.random.default_rng(5))
    edges = G.learn_skeleton(x, truth.schema, 10.0)
    assert G.shd(edges, truth.parents) == 0
    gains = G.edge_gains(x, truth.schema, 10.0)
    assert (gains.gain > 0).sum() >= 2 and gains.iloc[0][["a", "b"]].tolist() in (
        ["hairstyle", "hair_colour"], ["clothes", "clothes_colour"])
    # with very few rows the Bayesian score keeps (almost) nothing: no invented dependencies
    assert len(G.learn_skeleton(x[:15], truth.schema, 10.0)) <= 1


def test_forest_never_closes_a_cycle():
    rng = np.random.default_rng(0)
    a = rng.integers(0, 3, 500)
    schema = {"a": ("0", "1", "2"), "b": ("0", "1", "2"), "c": ("0", "1", "2")}
    x = np.column_stack([a, a, a])   # three copies: every pair depends, a tree keeps two edges
    edges = G.learn_skeleton(x, schema, 10.0)
    assert len(edges) == 2
    parents = G.rooted(edges, list(schema), {})
    assert sum(p is not None for p in parents.values()) == 2
    BayesNet(schema, parents, S.fit_model(x, schema, parents, "mle").tables)   # a valid forest


def test_shd_counts_missing_and_added_edges_on_the_skeleton():
    truth = {"a": None, "b": "a", "c": None, "d": None}
    assert G.shd({"a": "b", "b": None, "c": None, "d": None}, truth) == 0    # reversed: same skeleton
    assert G.shd({"a": None, "b": None, "c": "a", "d": None}, truth) == 2    # one missed, one added
    assert G.shd([("a", "b"), ("c", "d")], truth) == 1


def test_orientation_is_chosen_on_validation_rows():
    truth = D.ground_truth()
    x = truth.sample(600, np.random.default_rng(2))
    edges = G.learn_skeleton(x[:400], truth.schema, 10.0)
    parents = G.orient(edges, truth.schema, x[:400], x[400:], 0.3)
    assert G.shd(parents, truth.parents) == 0
    flipped = {**{a: None for a in truth.schema}, **{p: c for c, p in parents.items() if p}}
    val = lambda ps: S.fit_model(x[:400], truth.schema, ps, "bayes", 0.3).log_prob(x[400:]).sum()  # noqa: E731
    assert val(parents) >= val(flipped)


def test_deep_forest_marginals_pairs_and_kl():
    schema = {"a": ("0", "1"), "b": ("0", "1"), "c": ("0", "1")}
    chain = BayesNet(schema, {"a": None, "b": "a", "c": "b"},
                     {"a": np.array([0.3, 0.7]), "b": np.array([[0.9, 0.1], [0.2, 0.8]]),
                      "c": np.array([[0.6, 0.4], [0.1, 0.9]])})
    big = chain.sample(200_000, np.random.default_rng(0))
    assert np.allclose(chain.marginal("c"), np.bincount(big[:, 2]) / len(big), atol=0.01)
    joint = np.zeros((2, 2))
    np.add.at(joint, (big[:, 0], big[:, 2]), 1)
    assert np.allclose(chain.pair("a", "c"), joint / len(big), atol=0.01)
    indep = S.fit_model(big, schema, None, "mle")
    mc = np.mean(chain.log_prob(big) - indep.log_prob(big))
    assert kl_divergence(chain, indep) == pytest.approx(mc, abs=0.01)


def test_style_model_json_roundtrip(tmp_path):
    truth = D.ground_truth()
    back = load_json(save_json(truth, tmp_path / "m.json"))
    assert back.parents == truth.parents and all(np.allclose(back.tables[a], truth.tables[a]) for a in truth.schema)


# --- rendering and loaders ---------------------------------------------------------------------
def test_renderer_draws_the_attributes(tmp_path):
    base = {"hairstyle": "long_hair_straight", "hair_colour": "black", "accessory": "default",
            "clothes": "hoodie", "clothes_colour": "red", "skin": "light"}
    black = D.render_style(base, 48)
    assert black.shape == (48, 48, 3) and black.dtype == np.uint8
    assert (black[0, 0] == D.BACKGROUND).all()
    red = np.array([0xFF, 0x5C, 0x5C])
    assert (np.abs(black[-4:].reshape(-1, 3).astype(int) - red).sum(1) < 30).mean() > 0.3   # red hoodie
    blonde = D.render_style({**base, "hair_colour": "platinum"}, 48)
    assert np.abs(black.astype(int) - blonde).sum() > 0
    with pytest.raises(ValueError, match="TopType"):
        D.render_style({**base, "hairstyle": "mohawk"}, 48)
    table = pd.DataFrame([base, {**base, "clothes_colour": "blue_01"}])
    first = D.render_avatars(table, 32, cache_dir=tmp_path)
    assert first.shape == (2, 32, 32, 3) and len(list(tmp_path.glob("avatars-*.npz"))) == 1
    assert np.array_equal(D.render_avatars(table, 32, cache_dir=tmp_path), first)


def test_styles_csv_loader(tmp_path):
    folder = tmp_path / "avatars"
    folder.mkdir()
    for i in range(3):
        Image.new("RGBA", (40, 40), (10 * i, 0, 0, 255)).save(folder / f"p{i}.png")
    (tmp_path / "styles.csv").write_text("image,hair,glasses\np0.png,black,yes\np1.png,red,no\np2.png,black,no\n")
    data = D.load_styles_csv(tmp_path / "styles.csv", folder, 16)
    assert data.schema == {"hair": ("black", "red"), "glasses": ("no", "yes")}
    assert data.images.shape == (3, 16, 16, 3) and data.images[1, 0, 0, 0] == 10
    (tmp_path / "bad.csv").write_text("image,hair\nmissing.png,black\n")
    with pytest.raises(FileNotFoundError, match="missing.png"):
        D.load_styles_csv(tmp_path / "bad.csv", folder, 16)


def _cartoon(folder, name, values, colour):
    Image.new("RGBA", (50, 50), (*colour, 255)).save(folder / f"{name}.png")
    rows = [f'"{attr}", {v}, {n}' for attr, (v, n) in values.items()]
    (folder / f"{name}.csv").write_text("\n".join(rows) + "\n")


def test_cartoonset_fixture(tmp_path):
    sub = tmp_path / "cartoonset10k"
    sub.mkdir()
    _cartoon(sub, "cs1", {"eye_angle": (0, 3), "hair": (110, 111), "face_color": (2, 11)}, (200, 10, 10))
    _cartoon(sub, "cs2", {"eye_angle": (2, 3), "hair": (5, 111), "face_color": (2, 11)}, (10, 200, 10))
    (sub / "orphan.png").write_bytes(b"")   # no description: ignored
    data = D.load_cartoonset(tmp_path, 20)
    assert data.table.to_dict("records") == [{"eye_angle": "0", "hair": "110", "face_color": "2"},
                                             {"eye_angle": "2", "hair": "5", "face_color": "2"}]
    assert len(data.schema["hair"]) == 111 and data.images.shape == (2, 20, 20, 3)
    assert tuple(data.images[1, 5, 5]) == (10, 200, 10)
    model = S.fit_model(encode(data.table, data.schema), data.schema, None, "bayes", 1.0)
    assert model.tables["hair"][50] > 0   # an unseen hair style gets probability
    _cartoon(sub, "cs3", {"eye_angle": (5, 3)}, (0, 0, 0))
    with pytest.raises(ValueError, match="outside"):
        D.load_cartoonset(tmp_path, 20)
    with pytest.raises(FileNotFoundError, match="cartoonset"):
        D.load_cartoonset(tmp_path / "nope", 20)


def test_decode_roundtrip():
    assert decode(codes(), SCHEMA).equals(TABLE)


@pytest.mark.slow
def test_quick_run_end_to_end(tmp_path):
    cfg = config.get("styles", quick=True, paths=config.Paths.under(tmp_path, cache=config.CACHE_DIR))
    task = StylesTask(cfg, caller="cli")
    m = task.run()
    assert m["styles/small/learned/mle/zero_rate"] > m["styles/full/learned/mle/zero_rate"]
    assert m["styles/small/learned/bayes/zero_rate"] == 0
    assert m["avatars/c_factor/recognisability"] > m["avatars/a_independent/recognisability"]
    assert m["avatars/b_conditional/recognisability"] > m["avatars/a_independent/recognisability"]
    assert m["avatars/prior_strength"] in cfg.prior_strengths
    assert 0 <= m["avatars/invalid_rate"] <= m["avatars/invalid_rate_a1"] + 0.05
    assert all(math.isfinite(v) for v in m.values() if not isinstance(v, str))
    assert json.loads((tmp_path / "reports/styles/quick/metrics.json").read_text()) == m
    # the seeds stage: its own seed reproduces the heldout stage's full-size model, the others differ
    per_seed = task.seeds_
    assert m["headline/seeds"] == cfg.seeds == len(per_seed)
    assert per_seed.loc[cfg.seed, "heldout_ll"] == pytest.approx(m["styles/full/learned/bayes/heldout_ll"])
    assert per_seed.loc[cfg.seed, "invalid_rate"] == pytest.approx(m["avatars/invalid_rate"])
    assert per_seed.heldout_ll.nunique() == cfg.seeds
    low, high = m["styles/full/learned/bayes/heldout_ll_ci_low"], m["styles/full/learned/bayes/heldout_ll_ci_high"]
    assert low < m["styles/full/learned/bayes/heldout_ll"] < high
    assert m["headline/heldout_ll_ci_low"] <= m["headline/heldout_ll"] <= m["headline/heldout_ll_ci_high"]


def test_seed_spread_stays_inside_what_each_figure_can_be():
    from cvtasks.styles.seeds import spread

    per_seed = pd.DataFrame({"shd": [0, 0, 0, 0, 1], "invalid_rate": [0.0, 0.01, 0.0, 0.3, 0.02],
                             "heldout_ll": [-11.0, -11.2, -10.9, -11.1, -11.3]}, index=[42, 43, 44, 45, 46])
    table = spread(per_seed)
    assert table.loc["shd", "ci_low"] == 0 and table.loc["invalid_rate", "ci_low"] == 0   # the t-interval reaches below 0
    assert table.loc["shd", "mean"] == pytest.approx(0.2) and table.loc["shd", "ci_high"] > 0.2
    assert table.loc["heldout_ll", "ci_low"] < -11.1 < table.loc["heldout_ll", "ci_high"] < 0
    assert set(table.index) == {"shd", "invalid_rate", "heldout_ll"}
