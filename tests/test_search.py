"""The relevance model: target rule, metrics by hand, scorers, calibration, the "no good match"
threshold, the query checks, a tiny end-to-end run and the CLI."""
import dataclasses

import numpy as np
import pandas as pd
import pytest
import torch

import config
from cvtasks import cli
from cvtasks.data import openclipart
from cvtasks.models.search_nets import ConcatMLP, InteractionMLP, info_nce
from cvtasks.search import SearchTask, service
from cvtasks.search import calibration as C
from cvtasks.search import metrics as M
from cvtasks.search.data import blended_target, carve, expert_target
from cvtasks.search.scorers import ContrastiveScorer, CosineScorer, NetScorer, Schedule, Scorer
from tests.search_fixtures import write_library


def test_expert_target_by_hand():
    votes = np.array([[1, 1, 1], [4, 4, 4], [2, 3, 4], [4, 4, 3]])
    assert expert_target(votes) == pytest.approx([0.0, 1.0, 2 / 3, 8 / 9])
    with pytest.raises(ValueError, match="1..4"):
        expert_target(np.array([[0, 1, 2]]))


def test_crowd_blend_by_hand():
    pairs = pd.DataFrame({"expert_1": [4, 1], "expert_2": [4, 1], "expert_3": [4, 1], "share": [0.5, np.nan]})
    assert blended_target(pairs, 0.0) == pytest.approx([1.0, 0.0])
    assert blended_target(pairs, 0.25) == pytest.approx([0.75 * 1.0 + 0.25 * 0.5, 0.0])  # NaN: experts only
    with pytest.raises(ValueError):
        blended_target(pairs, 1.5)


def test_ranking_metrics_by_hand():
    gains = np.array([[1.0, 0.5, 0.0, 0.0], [0.0, 0.0, 0.9, 0.2]])
    scores = np.array([[3.0, 2.0, 1.0, 0.0], [0.1, 0.4, 0.2, 0.3]])
    per = M.per_query(scores, gains, strict=0.8, k_ndcg=3)
    assert per["ndcg@3"][0] == pytest.approx(1.0)
    ideal = 0.9 + 0.2 / np.log2(3)
    assert per["ndcg@3"][1] == pytest.approx((0.2 / np.log2(3) + 0.9 / np.log2(4)) / ideal)
    assert per["recall@1"].tolist() == [1.0, 0.0] and per["recall@5"].tolist() == [1.0, 1.0]
    assert per["mrr"].tolist() == [1.0, pytest.approx(1 / 3)]
    assert per["kendall_tau"][0] == pytest.approx(5 / np.sqrt(6 * 5))   # tau-b: 5 concordant, one tie in the gains


def test_paired_delta_of_a_model_with_itself_is_zero_and_pair_intervals_hold_the_value():
    per = pd.DataFrame({"ndcg@10": np.linspace(0, 1, 50)})
    same = M.paired_delta(per, per, "ndcg@10", resamples=100, seed=0)
    assert same.value == same.low == same.high == 0
    rng = np.random.default_rng(0)
    target = rng.random(300)
    ivs = M.pair_intervals(target + rng.normal(0, 0.1, 300), target, np.arange(300) // 5, resamples=200, seed=0)
    assert all(iv.low <= iv.value <= iv.high for iv in ivs.values()) and ivs["r2"].value > 0.5


def test_info_nce_counts_every_copy_of_an_image_as_a_match():
    logits = torch.tensor([[5.0, 5.0, -5.0], [5.0, 5.0, -5.0], [-5.0, -5.0, 5.0]])
    shared = info_nce(logits, torch.tensor([0.0, 0.0, 1.0]))
    assert shared.item() == pytest.approx((2 * np.log(2 + np.exp(-10)) + np.log(1 + 2 * np.exp(-10))) / 3, rel=1e-5)
    assert info_nce(10 * torch.eye(3), torch.tensor([0.0, 1.0, 2.0])).item() == pytest.approx(
        np.log(1 + 2 * np.exp(-10)), rel=1e-3)


@pytest.mark.parametrize("kind", ["mlp", "interaction"])
def test_gallery_grid_scores_equal_pair_by_pair_scores(kind):
    rng = np.random.default_rng(0)
    img, txt = rng.normal(size=(40, 12)), rng.normal(size=(40, 6))
    prior = CosineScorer(alpha=1.0).fit(img, txt)
    torch.manual_seed(0)
    net = ConcatMLP(12, 6, hidden=16, dropout=0.3) if kind == "mlp" else InteractionMLP(12, 6, proj=8, hidden=16,
                                                                                        dropout=0.3)
    scorer = NetScorer(kind, net, None if kind == "mlp" else [prior])
    scorer.img_scaler.fit(img)
    scorer.txt_scaler.fit(txt)
    gallery, queries = rng.normal(size=(7, 12)), rng.normal(size=(5, 6))
    grid = scorer.score_gallery(gallery, queries)
    assert grid.shape == (5, 7) and grid.std() > 0
    np.testing.assert_allclose(grid, Scorer.score_gallery(scorer, gallery, queries), atol=1e-5)


def test_contrastive_towers_align_matching_pairs():
    """Texts are a fixed linear view of their images plus noise: after training on 200 pairs,
    held-out texts find their own image far above chance."""
    rng = np.random.default_rng(0)
    img = rng.normal(size=(260, 40))
    txt = img @ rng.normal(size=(40, 12)) + 0.3 * rng.normal(size=(260, 12))
    ids = np.arange(260, dtype=float)
    scorer = ContrastiveScorer(40, 12, dim=16, dropout=0.0).fit(
        img[:200], txt[:200], ids[:200], (img[200:230], txt[200:230], ids[200:230]),
        Schedule(epochs=30, lr=1e-2, weight_decay=0.0, batch_size=64, patience=30, seed=0))
    scores = scorer.score_gallery(img[230:], txt[230:])
    assert (scores.argmax(axis=1) == np.arange(30)).mean() > 0.5         # chance: 1/30


def test_isotonic_calibration_and_ece_by_hand():
    pred = np.array([0.05, 0.15, 0.95])
    target = np.array([0.05, 0.35, 0.95])
    assert C.ece(pred, target, bins=10) == pytest.approx(0.2 / 3)
    rng = np.random.default_rng(0)
    raw = rng.random(2000)
    truth = raw ** 3                       # a monotone, badly scaled score
    cal = C.fit_calibrator(raw[:1000], truth[:1000] + rng.normal(0, 0.05, 1000))
    assert C.ece(cal.predict(raw[1000:]), truth[1000:], 10) < 0.03 < C.ece(raw[1000:], truth[1000:], 10)


def test_nomatch_threshold_meets_the_precision_it_was_chosen_for():
    best = np.r_[np.linspace(0.0, 0.4, 20), np.linspace(0.3, 1.0, 80)]
    no_match = np.r_[np.ones(20, bool), np.zeros(80, bool)]
    choice = C.choose_nomatch(best, no_match, precision=0.9, prevalence=0.2)
    answered = best < choice.threshold
    assert no_match[answered].mean() >= 0.9 and choice.recall > 0.5      # here the sample's mix is 0.2 too
    quality = C.nomatch_quality(best, no_match, choice.threshold, prevalence=0.2)
    assert quality["precision"] == pytest.approx(choice.precision) and quality["roc_auc"] > 0.9
    # the same answers count as less precise where fewer searches have nothing to find
    assert C.nomatch_quality(best, no_match, choice.threshold, prevalence=0.05)["precision"] < quality["precision"]


@pytest.mark.parametrize("query, words", [("   ", "empty"), ("!!! ???", "no letters"), ("красная машина", "English")])
def test_bad_queries_get_a_clear_answer(query, words):
    with pytest.raises(service.QueryError, match=words):
        service.check_query(query)


def test_long_queries_are_cut_with_a_note():
    text, notes = service.check_query("a red car " * 100)
    assert len(text) == service.MAX_QUERY_CHARS and "cut" in notes[0]


def test_a_carved_gallery_shares_no_image_and_no_text_with_training():
    rng = np.random.default_rng(0)
    q = np.arange(300) % 40                     # 40 queries, each voted on images of its own block of 6
    pairs = pd.DataFrame({"image": [f"img{6 * (k // 4) + rng.integers(6)}" for k in q], "query_id": [f"q{k}#0" for k in q],
                          "query_text": [f"query {k}" for k in q], "expert_1": 2, "expert_2": 2, "expert_3": 2})
    rest, gallery = carve(pairs, "val", 0.2, 0, config.ROOT)
    assert not set(rest.image) & set(gallery.images) and not set(rest.query_text) & set(gallery.queries.query_text)
    assert len(rest) and len(gallery.votes)


# --- the builder: duplicates, text groups, galleries ----------------------------------------------------
def test_duplicates_and_shared_texts_never_cross_the_split(tmp_path):
    svg_dir, png_dir = write_library(tmp_path / "lib", per_subject=10, duplicates=4, shared_titles=3)
    settings = openclipart.BuildSettings(n_images=None, test_image_fraction=0.25, val_image_fraction=0.2,
                                         nomatch_categories=0, seen_queries=5, same_subject_pairs=2, random_pairs=2,
                                         expert_noise=0.35, seed=1, svg_dir=str(svg_dir), png_dir=str(png_dir))
    out = openclipart.build(tmp_path / "build", settings)
    manifest = __import__("json").loads((out / "build.json").read_text())
    assert manifest["duplicates removed"] >= 4
    cfg = config.get("search", quick=True, dataset_dir=out)
    from cvtasks.search.data import cross_split_audit, load_data

    audit = cross_split_audit(load_data(cfg))
    assert audit["data/cross_split_duplicates"] == 0 and audit["data/cross_split_queries"] == 0


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("search")
    svg_dir, png_dir = write_library(tmp / "lib", per_subject=8)
    build = openclipart.build(tmp / "data", openclipart.BuildSettings(
        n_images=None, test_image_fraction=0.25, val_image_fraction=0.25, nomatch_categories=1, seen_queries=4,
        same_subject_pairs=3, random_pairs=2, expert_noise=0.35, seed=0, svg_dir=str(svg_dir), png_dir=str(png_dir)))
    cfg = config.get("search", quick=True, dataset_dir=build, epochs=2, batch_size=16, top_k=3, resamples=50,
                     paths=config.Paths.under(tmp / "out", cache=tmp / "cache"))
    return cfg, tmp


@pytest.mark.slow
def test_end_to_end_and_cli_search(tiny, monkeypatch, capsys):
    cfg, tmp = tiny
    metrics = SearchTask(cfg, caller="cli", wandb_mode="disabled").run()
    for key in ("data/cross_split_duplicates", "data/cross_split_queries", "new_queries/test/ndcg@10",
                "new_queries/test/ndcg@10_ci_low", "new_queries/vote_free/test/ndcg@10",
                "new_queries/test/ndcg@10_delta_ci_low", "new_queries/test/kendall_tau", "new_queries/test/recall@5",
                "calibration/test/ece", "test/mae_ci_low", "test/r2_ci_high"):
        assert key in metrics, key
    assert metrics["data/cross_split_duplicates"] == 0 and metrics["data/cross_split_queries"] == 0
    assert metrics["search/ranker"] in ("dummy", "linear", "mlp", "interaction", "cosine", "contrastive", "blend")
    split = __import__("json").loads((tmp / "out/reports/search/quick/split.json").read_text())
    assert set(split) == {"train", "val", "test"} and not set(split["test"]["queries"]) & set(split["train"]["queries"])

    monkeypatch.setattr(config, "get", lambda task, quick=None, **kw: cfg)
    assert cli.main(["search", "a red car", "--k", "3"]) == 0
    out = capsys.readouterr().out.strip().splitlines()
    hits = [line for line in out if not line.startswith("note:")]
    assert len(hits) in (0, 3)
    if hits:
        scores = [float(line.split()[0]) for line in hits]
        assert scores == sorted(scores, reverse=True) and all(0 <= s <= 1 for s in scores)
    else:
        assert "no good match" in out[-1]


def test_cli_search_rejects_bad_input(capsys, tmp_path, monkeypatch):
    monkeypatch.setattr(config, "get", lambda task, quick=None, **kw: config.SearchConfig(paths=config.Paths.under(tmp_path)))
    assert cli.main(["search", "a cat"]) == 2
    assert "run search" in capsys.readouterr().err        # nothing trained there yet: says how to get one


def test_config_rejects_bad_values():
    with pytest.raises(config.ConfigError, match="crowd_weight"):
        dataclasses.replace(config.get("search"), crowd_weight=1.5)
    with pytest.raises(config.ConfigError, match="contrastive_dims"):
        dataclasses.replace(config.get("search"), contrastive_dims=())
    with pytest.raises(config.ConfigError, match="contrastive_dropouts"):
        dataclasses.replace(config.get("search"), contrastive_dropouts=(1.0,))
    with pytest.raises(config.ConfigError, match="fraction"):
        dataclasses.replace(config.get("search"), test_image_fraction=0.6, val_image_fraction=0.5)
    for n in (0, -3, True, "all"):
        with pytest.raises(config.ConfigError, match="n_images"):
            dataclasses.replace(config.get("search"), n_images=n)


def _texts(rng: np.random.Generator, centres: np.ndarray, per: int) -> np.ndarray:
    return np.repeat(centres, per, axis=0) + 0.1 * rng.normal(size=(len(centres) * per, centres.shape[1]))


def test_gallery_text_evidence_is_a_conformal_rank_and_leaves_a_querys_own_drawing_out():
    rng = np.random.default_rng(0)
    present, absent = rng.normal(size=(5, 16)), rng.normal(size=(5, 16))   # subjects in / out of the gallery
    texts = _texts(rng, present, 4)
    owners = np.repeat([f"d{i}" for i in range(5)], 4)
    null = _texts(rng, absent, 40)                                         # calibration: nothing to find
    gallery = C.gallery_text(texts, owners, null, (1, 3))
    fresh_absent, fresh_present = _texts(rng, absent, 20), _texts(rng, present, 20)
    out = C.text_evidence(fresh_absent, gallery)["gallery text, k=3"]
    assert 0.2 < out.mean() < 0.8 and (out > 0).all() and (out <= 1).all()   # null queries: ranks spread over (0, 1]
    assert (C.text_evidence(fresh_present, gallery)["gallery text, k=3"] > 0.95).all()
    # a gallery query's own drawing does not vouch for it: with d0's texts left out, a d0 query
    # is as far from the rest as a subject the gallery lacks
    own = np.full(len(fresh_present), "", dtype=object)
    own[:20] = "d0"
    sims = C.knn_similarity(fresh_present, gallery, (1,), own.astype(str))[1]
    assert sims[:20].max() < sims[20:].min()


def test_the_served_search_says_nothing_fits_from_the_gallery_text_and_keeps_its_ranking():
    rng = np.random.default_rng(1)
    present, absent = rng.normal(size=(4, 8)), rng.normal(size=(4, 8))
    gallery_vectors = rng.normal(size=(6, 8))

    class Dot:
        def score_gallery(self, gallery, queries):
            return queries @ gallery.T

    bundle = service.Bundle(ranker="dot", scorers={"dot": Dot()}, weights={"dot": 1.0},
                            calibrator=C.fit_calibrator(np.linspace(-5, 5, 50), np.linspace(0, 1, 50)),
                            threshold=0.9, statistic="gallery text, k=1", gallery=gallery_vectors,
                            files=[f"f{i}" for i in range(6)], titles=[f"t{i}" for i in range(6)], folder=".",
                            text_encoder="none",
                            texts=C.gallery_text(_texts(rng, present, 3), np.repeat(["a", "b", "c", "d"], 3),
                                                 _texts(rng, absent, 30), (1,)))
    queries = np.r_[_texts(rng, present, 2), _texts(rng, absent, 2)]
    _, found, order = bundle.scored(queries)
    assert found[:8].all() and found[8:].mean() < 0.5   # about 1 - 0.9 of the absent ones slip through
    plain = service.Bundle(**{**bundle.__dict__, "texts": None, "statistic": "best", "threshold": -np.inf})
    assert (plain.scored(queries)[2] == order).all()    # the answer changes, the ranking does not
