"""The brands task: the backbone split, intervals by product model, the labelling strategies,
noisy labels found by cleanlab, and a quick end-to-end run."""
import math

import numpy as np
import pytest

import config
from cvtasks.brands import BrandsTask
from cvtasks.brands import evaluation as E
from cvtasks.brands import labelling as L
from cvtasks.brands.data import BrandData
from cvtasks.metrics import fast_macro_f1

REQUIRED = ("test/macro_f1", "test/macro_f1_ci_low", "test/macro_f1_ci_high", "finetuned/test/macro_f1_ci_low",
            "frozen/test/macro_f1_ci_low", "baseline/val/macro_f1", "baseline/train/macro_f1", "al/seeds",
            "autolabel/noise_rate", "autolabel/flag_precision", "autolabel/flag_recall", "test/n_models")


def _data(n_models=12, per_model=5, n_classes=3, seed=0):
    rng = np.random.default_rng(seed)
    groups = np.repeat(np.arange(n_models), per_model)
    labels = groups % n_classes
    split = np.where(groups < n_models // 2, "train", np.where(groups < 3 * n_models // 4, "val", "test"))
    return BrandData(np.zeros((len(groups), 4, 4, 3), np.uint8), labels, groups,
                     [f"b{i}" for i in range(n_classes)], split, {}), rng


def test_fast_macro_f1_matches_scikit_learn():
    from sklearn.metrics import f1_score

    rng = np.random.default_rng(0)
    y, p = rng.integers(0, 5, 300), rng.integers(0, 5, 300)
    assert fast_macro_f1(y, p, 5) == pytest.approx(f1_score(y, p, average="macro"))


def test_intervals_resample_product_models_and_a_paired_difference_of_equals_is_zero():
    data, rng = _data()
    test = data.idx("test")
    perfect = data.labels.copy()
    noisy = np.where(rng.random(len(perfect)) < 0.3, (perfect + 1) % 3, perfect)
    iv = E.seeds_models_interval([noisy], data, "test", count=300)
    assert iv.low < iv.value < iv.high or iv.low == iv.high
    assert E.seeds_models_interval([perfect], data, "test", count=50).low == 1.0
    same = E.paired_difference([noisy], [noisy], data, "test", count=100)
    assert same.value == same.low == same.high == 0.0
    assert len(np.unique(data.groups[test])) == 3


def test_every_strategy_labels_new_images_each_round_and_reads_only_validation():
    rng = np.random.default_rng(1)
    centres = rng.normal(0, 3, (4, 8))
    y = rng.integers(0, 4, 300)
    x = centres[y] + rng.normal(0, 1, (300, 8))
    vy = rng.integers(0, 4, 100)
    vx = centres[vy] + rng.normal(0, 1, (100, 8))
    for strategy in config.AL_STRATEGIES:
        s = L.session(x, y, vx, vy, strategy=strategy, n_classes=4, seed=0,
                      cfg=config.get("brands", al_initial_labels=8, al_batch=6, al_rounds=4))
        assert s.n_labels == [8, 14, 20, 26, 32], strategy
        assert all(len(set(a)) == len(a) for a in s.labelled) and set(s.labelled[0]) <= set(s.labelled[-1])
        assert s.val_accuracy[-1] > 0.8, strategy
    table = L.reach_table({"random": [s]}, 0.5)
    assert table.loc["random", "median"] == 8 and L.choose_strategy(table) == "random"


def test_cleanlab_finds_most_injected_wrong_labels():
    rng = np.random.default_rng(2)
    centres = rng.normal(0, 4, (3, 6))
    y = np.repeat(np.arange(3), 100)
    x = centres[y] + rng.normal(0, 1, (300, 6))
    groups = np.arange(300) // 3
    nearest = L.lookalikes(x, y, 3)
    noisy, flipped = L.inject_noise(y, 3, 0.1, 0.6, nearest, seed=0)
    assert flipped.mean() == pytest.approx(0.1) and (noisy[flipped] != y[flipped]).all()
    probs = L.out_of_fold(x, noisy, groups, 3, 5, seed=0)
    flags = L.find_suspects(noisy, probs)
    assert flags[flipped].mean() > 0.8 and flipped[flags].mean() > 0.6
    curve = L.coverage_curve(probs, y, [0.5, 1.0])
    assert curve.accuracy.iloc[0] >= curve.accuracy.iloc[1]


@pytest.mark.slow
def test_quick_run_writes_the_issue_metrics(tmp_path):
    cfg = config.get("brands", quick=True, n_images=200, image_size=64, epochs=3, cnn_epochs=1, al_rounds=2,
                     al_batch=8, paths=config.Paths.under(tmp_path, cache=config.CACHE_DIR))
    m = BrandsTask(cfg, caller="cli", wandb_mode="disabled").run()
    for key in REQUIRED:
        assert key in m and (isinstance(m[key], str) or math.isfinite(m[key])), key
    assert m["al/eval_split"] == "val" and m["al/seeds"] == cfg.al_seeds
    assert m["test/macro_f1_ci_low"] <= m["test/macro_f1"] <= m["test/macro_f1_ci_high"]
    assert m["frozen/train/accuracy"] > 0.5          # the head learnt something even on this tiny set
    assert m["baseline/val/macro_f1"] != m["baseline/test/macro_f1"] or m["baseline/val/accuracy"] != m["baseline/test/accuracy"]
    assert (tmp_path / "runs" / "brands").is_dir()


@pytest.mark.slow
def test_backbone_split_reproduces_the_encoder_embedding():
    import torch

    from cvtasks.brands.features import split_backbone
    from cvtasks.models import create_image_encoder

    encoder = create_image_encoder("efficientnet_lite0")
    trunk, tail = split_backbone(encoder.backbone, 2)
    x = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        np.testing.assert_allclose(tail(trunk(x)).numpy(), encoder.embed(x).numpy(), rtol=1e-4, atol=1e-5)
    with pytest.raises(ValueError, match="tail_blocks"):
        split_backbone(encoder.backbone, 0)
