"""The relevance model: target rule, split by image, search metrics, end to end and the CLI."""
import dataclasses

import numpy as np
import pandas as pd
import pytest
import torch

import config
from cvtasks import cli, search
from cvtasks.data import course_search, openclipart
from tests.search_fixtures import write_course_layout, write_library


def test_expert_target_by_hand():
    votes = np.array([[1, 1, 1], [4, 4, 4], [2, 3, 4], [4, 4, 3]])
    assert search.expert_target(votes) == pytest.approx([0.0, 1.0, 2 / 3, 8 / 9])
    with pytest.raises(ValueError, match="1..4"):
        search.expert_target(np.array([[0, 1, 2]]))


def test_crowd_blend_by_hand():
    pairs = pd.DataFrame({"expert_1": [4, 1], "expert_2": [4, 1], "expert_3": [4, 1], "share": [0.5, np.nan]})
    assert search.blended_target(pairs, 0.0) == pytest.approx([1.0, 0.0])
    assert search.blended_target(pairs, 0.25) == pytest.approx([0.75 * 1.0 + 0.25 * 0.5, 0.0])  # NaN: experts only
    with pytest.raises(ValueError):
        search.blended_target(pairs, 1.5)


def test_split_by_image_never_puts_an_image_on_two_sides():
    rng = np.random.default_rng(0)
    images = pd.Series(rng.choice([f"img{i}" for i in range(60)], size=500))
    split = search.split_by_image(images, 0.25, 0.15, seed=1)
    sides = {k: set(images.iloc[v]) for k, v in split.items()}
    assert not sides["train"] & sides["val"] and not sides["train"] & sides["test"] and not sides["val"] & sides["test"]
    assert sorted(np.concatenate(list(split.values()))) == list(range(500))
    assert all(len(v) for v in split.values())


def test_recall_counts_ties_by_chance():
    scores = np.array([[0.9, 0.5, 0.1, 0.1], [0.2, 0.2, 0.2, 0.2], [0.1, 0.2, 0.3, 0.4]])
    own = np.array([0, 1, 0])
    assert search.recall_at_k(scores, own, 2).tolist() == [1.0, 0.5, 0.0]


def test_ranking_metrics_by_hand():
    gains = np.array([[1.0, 0.5, 0.0]])
    perfect, _ = search.ranking_metrics(np.array([[3.0, 2.0, 1.0]]), gains, np.array([0]), "m", k_ndcg=3, k_recall=1)
    assert perfect == {"m/ndcg@3": pytest.approx(1.0), "m/recall@1": 1.0}
    worst, _ = search.ranking_metrics(np.array([[1.0, 2.0, 3.0]]), gains, np.array([0]), "m", k_ndcg=3, k_recall=1)
    ideal = 1.0 + 0.5 / np.log2(3)
    assert worst["m/ndcg@3"] == pytest.approx((0.5 / np.log2(3) + 1.0 / np.log2(4)) / ideal)


def test_info_nce_counts_every_copy_of_an_image_as_a_match():
    logits = torch.tensor([[5.0, 5.0, -5.0], [5.0, 5.0, -5.0], [-5.0, -5.0, 5.0]])
    # rows 0 and 1 show one image: half the target on each copy; cross-entropy by hand
    shared = search.info_nce(logits, torch.tensor([0.0, 0.0, 1.0]))
    assert shared.item() == pytest.approx((2 * np.log(2 + np.exp(-10)) + np.log(1 + 2 * np.exp(-10))) / 3, rel=1e-5)
    # three distinct images, each text sure of its own: almost no loss
    assert search.info_nce(10 * torch.eye(3), torch.tensor([0.0, 1.0, 2.0])).item() == pytest.approx(
        np.log(1 + 2 * np.exp(-10)), rel=1e-3)


@pytest.mark.parametrize("kind", ["mlp", "interaction"])
def test_gallery_grid_scores_equal_pair_by_pair_scores(kind):
    rng = np.random.default_rng(0)
    img, txt = rng.normal(size=(40, 12)), rng.normal(size=(40, 6))
    prior = search.CosineScorer(alpha=1.0).fit(img, txt)
    torch.manual_seed(0)
    if kind == "mlp":
        scorer = search.NetScorer(kind, search.ConcatMLP(12, 6, hidden=16, dropout=0.3))
    else:
        scorer = search.NetScorer(kind, search.InteractionMLP(12, 6, proj=8, hidden=16, dropout=0.3), [prior])
    scorer.img_scaler.fit(img)
    scorer.txt_scaler.fit(txt)
    gallery, queries = rng.normal(size=(7, 12)), rng.normal(size=(5, 6))
    grid = scorer.score_gallery(gallery, queries)
    assert grid.shape == (5, 7) and grid.std() > 0
    np.testing.assert_allclose(grid, search.Scorer.score_gallery(scorer, gallery, queries), atol=1e-5)


def test_contrastive_towers_align_matching_pairs():
    """Texts are a fixed linear view of their images plus noise: after training on 200 pairs,
    held-out texts find their own image far above chance, and matching pairs score higher."""
    rng = np.random.default_rng(0)
    img = rng.normal(size=(260, 40))
    txt = img @ rng.normal(size=(40, 12)) + 0.3 * rng.normal(size=(260, 12))
    ids = np.arange(260, dtype=float)
    scorer = search.ContrastiveScorer(40, 12, dim=16, dropout=0.0).fit(
        img[:200], txt[:200], ids[:200], (img[200:230], txt[200:230], ids[200:230]), epochs=30, lr=1e-2,
        weight_decay=0.0, batch_size=64, patience=30, seed=0)
    held = slice(230, 260)
    scores = scorer.score_gallery(img[held], txt[held])                  # (30 queries, 30 images)
    assert (scores.argmax(axis=1) == np.arange(30)).mean() > 0.5         # chance: 1/30
    matched = scorer.predict(img[held], txt[held])
    shuffled = scorer.predict(img[held], txt[held][::-1])
    assert matched.mean() > shuffled.mean() + 0.3
    assert scores[np.arange(30), np.arange(30)] == pytest.approx(matched)


def test_gallery_gains_use_test_votes_and_the_own_image(tmp_path):
    root = write_course_layout(tmp_path / "course")
    (root / "test_annotations.tsv").write_text("t1.jpg\tt0.png#0\t2\t3\t3\n")
    gains = search.gallery_gains(course_search.load(root))
    assert gains.tolist() == [[1.0, pytest.approx(5 / 9)], [0.0, 1.0]]


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    """Settings of a tiny build from a fake library, with cache and models in a temp folder."""
    tmp = tmp_path_factory.mktemp("search")
    svg_dir, png_dir = write_library(tmp / "lib")
    build = openclipart.build(tmp / "data", openclipart.BuildSettings(
        n_images=24, test_image_fraction=0.25, same_subject_pairs=3, random_pairs=2, expert_noise=0.35,
        seed=0, svg_dir=str(svg_dir), png_dir=str(png_dir)))
    cfg = config.get("search", quick=True, dataset_dir=build, epochs=2, batch_size=16, top_k=3)
    return cfg, tmp


@pytest.mark.slow
def test_end_to_end_and_cli_search(tiny, monkeypatch, capsys):
    cfg, tmp = tiny
    monkeypatch.setattr(config, "CACHE_DIR", tmp / "cache")
    monkeypatch.setattr(config, "SEARCH_MODELS_DIR", tmp / "models")
    metrics = search.run(cfg)
    for key in ("test/mae", "test/rmse", "test/r2", "dummy/test/mae", "test/ndcg@10", "cosine/test/ndcg@10",
                "contrastive/test/ndcg@10", "test/recall@5", "linear/test/r2", "mlp/test/r2", "interaction/test/r2"):
        assert np.isfinite(metrics[key]), key
    assert metrics["dummy/test/recall@5"] == pytest.approx(5 / 6)   # a constant ranks by chance: k / n
    saved = list((tmp / "models").glob("search-*.joblib"))
    assert len(saved) == 1

    monkeypatch.setattr(config, "get", lambda task, quick=None, **kw: cfg)
    assert cli.main(["search", "a red car", "--k", "3"]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert len(lines) == 3
    scores = [float(line.split()[0]) for line in lines]
    assert scores == sorted(scores, reverse=True)
    gallery = set(course_search.load(cfg.dataset_dir).test_images)
    assert all(line.split()[1] in gallery for line in lines)
    assert list((tmp / "models").glob("search-*.joblib")) == saved   # reused, not retrained


@pytest.mark.slow
def test_crowd_blend_keeps_the_runs_own_row_and_refits_the_others(tiny, monkeypatch):
    cfg, tmp = tiny
    monkeypatch.setattr(config, "CACHE_DIR", tmp / "cache")
    exp = search.run_experiment(cfg)
    refits = []
    real_fit_net = search.fit_net
    monkeypatch.setattr(search, "fit_net", lambda kind, *a, **kw: refits.append(kind) or real_fit_net(kind, *a, **kw))
    blend = search.crowd_blend_effect(exp, weights=(0.0, 0.5), kind="interaction")
    assert refits == ["interaction"]                      # w = 0 is the run's own model
    assert blend.loc[0.0, "r2"] == exp.metrics["interaction/test/r2"]
    assert blend.loc[0.0, "ndcg@10"] == exp.metrics["interaction/test/ndcg@10"]
    assert np.isfinite(blend.loc[0.5, "r2"]) and blend.loc[0.5, "r2"] != blend.loc[0.0, "r2"]


def test_cli_search_rejects_bad_input(monkeypatch, capsys):
    assert cli.main(["search", "a cat", "--k", "0"]) == 2
    assert "--k 0" in capsys.readouterr().err
    assert cli.main(["search", "   "]) == 2
    assert "empty" in capsys.readouterr().err


def test_config_rejects_a_crowd_weight_above_one():
    with pytest.raises(config.ConfigError, match="crowd_weight"):
        dataclasses.replace(config.get("search"), crowd_weight=1.5)


def test_tower_selection_keeps_the_lowest_validation_loss(monkeypatch):
    cfg = dataclasses.replace(config.get("search", quick=True), contrastive_dims=(8, 16), contrastive_dropouts=(0.0, 0.5))
    losses = {(8, 0.0): 0.9, (8, 0.5): 0.7, (16, 0.0): 0.4, (16, 0.5): 0.8}
    seen = []

    class Fitted:
        def __init__(self, towers):
            self.history = type("H", (), {"best_score": losses[towers], "best_epoch": 3})()

    def fake_fit(kind, cfg_, feats, pairs, rows, val_rows, device=None, towers=None):
        assert kind == "contrastive" and list(rows) == [0, 1] and list(val_rows) == [2]   # never the test split
        seen.append(towers)
        return Fitted(towers)

    monkeypatch.setattr(search, "fit_zero_shot", fake_fit)
    split = {"train": np.array([0, 1]), "val": np.array([2]), "test": np.array([3])}
    towers, table, chosen = search.select_towers(cfg, None, None, split)
    assert towers == (16, 0.0) and sorted(seen) == sorted(losses)
    assert chosen.history.best_score == 0.4   # the fitted winner itself, not a refit
    assert len(table) == 4 and table["val/loss"].min() == 0.4


@pytest.mark.parametrize("n", [0, -3, True, "all"])
def test_config_rejects_a_bad_image_count(n):
    with pytest.raises(config.ConfigError, match="n_images"):
        dataclasses.replace(config.get("search"), n_images=n)


def test_config_rejects_an_empty_or_bad_tower_grid():
    with pytest.raises(config.ConfigError, match="contrastive_dims"):
        dataclasses.replace(config.get("search"), contrastive_dims=())
    with pytest.raises(config.ConfigError, match="contrastive_dropouts"):
        dataclasses.replace(config.get("search"), contrastive_dropouts=(1.0,))
