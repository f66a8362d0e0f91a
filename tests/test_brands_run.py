"""The quick end-to-end run of the brands task, on a tiny configuration and a private cache."""
import math

import numpy as np
import pytest

import config
from cvtasks import brands

REQUIRED = ("test/macro_f1", "test/accuracy", "baseline/color_hist_macro_f1", "al/labels_to_95pct",
            "al/pool_size", "autolabel/coverage")


@pytest.mark.slow
def test_quick_run_writes_the_issue_metrics(tmp_path, monkeypatch):
    monkeypatch.setattr(config, "CACHE_DIR", tmp_path / "cache")
    monkeypatch.setattr(config, "TENSORBOARD_DIR", tmp_path / "runs")
    cfg = config.get("brands", quick=True, n_images=160, image_size=64, epochs=3, cnn_epochs=1,
                     finetune_epochs=1, al_rounds=2, al_batch=8)
    m = brands.run(cfg, device="cpu")
    for key in REQUIRED:
        assert key in m and math.isfinite(m[key]), key
    assert m["data/n_images"] == 160 and m["data/imbalance_ratio"] >= 5
    assert m["al/pool_size"] == pytest.approx(np.sum(brands.load_data(cfg).split == "train"))
    assert 0 <= m["test/macro_f1"] <= 1 and 0 <= m["baseline/color_hist_macro_f1"] <= 1
    # the transfer model learnt something even on this tiny set: well above chance (1/9)
    assert m["frozen/train/accuracy"] > 0.5
    assert (tmp_path / "runs").is_dir() and any((tmp_path / "cache").glob("brands-features-*.npz"))


@pytest.mark.slow
def test_backbone_split_reproduces_the_encoder_embedding():
    import torch

    from cvtasks.models import create_image_encoder

    encoder = create_image_encoder("efficientnet_lite0")
    trunk, tail = brands.split_backbone(encoder.backbone, 2)
    x = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        np.testing.assert_allclose(tail(trunk(x)).numpy(), encoder.embed(x).numpy(), rtol=1e-4, atol=1e-5)
    with pytest.raises(ValueError, match="tail_blocks"):
        brands.split_backbone(encoder.backbone, 0)
