import math

import numpy as np
import pandas as pd
import pytest
from PIL import Image
from scipy import stats

import config
from cvtasks import styles as S
from cvtasks.bayesnet import BayesNet, decode, encode, kl_divergence
from cvtasks.data import styles as D

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
    with pytest.raises(ValueError, match="parent->child"):
        S.parse_dependencies(["top=>hair"], SCHEMA)
    with pytest.raises(ValueError, match="prior_strength"):
        S.posterior_mean(np.ones(3), 0)
    with pytest.raises(ValueError, match="shape"):
        BayesNet(SCHEMA, PARENTS, {"top": np.ones(3) / 3, "hair": np.ones(3) / 3})


def test_experiments_show_mle_zeros_and_bayes_coverage():
    truth = D.ground_truth()
    x = truth.sample(300, np.random.default_rng(0))
    frame = S.heldout_experiment(x, truth.schema, truth.parents, sizes=[10, 240], prior_strengths=[1.0],
                                 repeats=3, test_fraction=0.2, seed=0, truth=truth)
    summary = S.summarise_heldout(frame)
    dep = summary[summary.model == "dependent"].set_index(["method", "n"])
    assert dep.loc[("mle", 10), "zero_rate"] > dep.loc[("mle", 240), "zero_rate"]
    assert dep.loc[("bayes", 10), "zero_rate"] == 0
    assert dep.loc[("bayes", 240), "kl"] < dep.loc[("bayes", 10), "kl"]
    gen = S.generation_experiment(x, truth.schema, truth.parents, n_samples=2000, prior_strength=1.0,
                                  seed=0, truth=truth).set_index(["model", "method"])
    assert gen.loc[("dependent", "mle"), "validity"] == 1.0
    assert gen.loc[("independent", "mle"), "validity"] < 0.8


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
def test_quick_run_end_to_end():
    m = S.run(config.get("styles", quick=True))
    assert m["styles/small/mle/zero_rate"] > m["styles/full/mle/zero_rate"]
    assert m["styles/small/bayes/zero_rate"] == 0
    assert m["avatars/c_factor/recognisability"] > m["avatars/a_independent/recognisability"]
    assert m["avatars/b_conditional/recognisability"] > m["avatars/a_independent/recognisability"]
    assert all(math.isfinite(v) for v in m.values())
