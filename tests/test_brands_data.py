"""The chandelier generator, the model-grouped split, the photo-folder loader, colour histograms."""
import numpy as np
import pytest
from PIL import Image

from cvtasks.brands import data as brands
from cvtasks.brands.evaluation import color_histograms
from cvtasks.brands.training import class_weights
from cvtasks.data import chandeliers


def test_generator_is_deterministic_by_seed():
    a = chandeliers.generate(27, 48, seed=3)
    b = chandeliers.generate(27, 48, seed=3)
    c = chandeliers.generate(27, 48, seed=4)
    assert a["images"].shape == (27, 48, 48, 3) and a["images"].dtype == np.uint8
    np.testing.assert_array_equal(a["images"], b["images"])
    np.testing.assert_array_equal(a["models"], b["models"])
    assert not np.array_equal(a["images"], c["images"])
    assert set(a["labels"]) == set(range(len(chandeliers.BRANDS)))


def test_brands_are_imbalanced_like_a_market():
    counts = chandeliers.brand_counts(2000)
    assert counts.sum() == 2000 and len(counts) >= 8
    assert counts.max() >= 5 * counts.min()
    assert chandeliers.CLOSE_PAIR[0] in chandeliers.BRAND_NAMES and chandeliers.CLOSE_PAIR[1] in chandeliers.BRAND_NAMES
    with pytest.raises(ValueError, match="too few"):
        chandeliers.brand_counts(5)


def test_finishes_are_shared_across_brands():
    # a finish must not give the brand away: each finish appears in several brands' catalogues
    cat = chandeliers.catalogue(seed=42)
    brands_per_finish = {f: {b for b, models in enumerate(cat) for _, fin in models if fin == f}
                         for f in chandeliers.FINISHES}
    assert all(len(b) >= 3 for b in brands_per_finish.values()), brands_per_finish


def test_split_keeps_each_model_on_one_side():
    labels = np.repeat(np.arange(3), [40, 20, 12])
    groups = np.concatenate([np.repeat(np.arange(8), 5), np.repeat(np.arange(10, 14), 5), np.repeat([20, 21, 22], 4)])
    split = chandeliers.split_by_model(labels, groups, test_fraction=0.25, val_fraction=0.15, seed=0)
    for g in np.unique(groups):
        assert len(set(split[groups == g])) == 1, f"model {g} straddles splits"
    for b in range(3):
        assert {"train", "val", "test"} <= set(split[labels == b])
    assert 0.15 <= (split[labels == 0] == "test").mean() <= 0.35
    np.testing.assert_array_equal(split, chandeliers.split_by_model(labels, groups, 0.25, 0.15, seed=0))


def test_generated_set_is_cached_by_its_settings(tmp_path, monkeypatch):
    calls = []
    real = chandeliers.generate
    monkeypatch.setattr(chandeliers, "generate", lambda *a: calls.append(a) or real(*a))
    first = chandeliers.load_chandeliers(18, 32, 0, cache_dir=tmp_path)
    second = chandeliers.load_chandeliers(18, 32, 0, cache_dir=tmp_path)
    chandeliers.load_chandeliers(18, 40, 0, cache_dir=tmp_path)
    assert len(calls) == 2
    np.testing.assert_array_equal(first["images"], second["images"])


def _jpg(path, value):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.full((30, 40, 3), value, np.uint8)).save(path, "JPEG")
    return path


def test_photo_folder_skips_corrupt_files_and_groups_by_model(tmp_path):
    for brand in ("aura", "bolt", "cove"):
        for model in ("m1", "m2", "m3"):
            for k in range(2):
                _jpg(tmp_path / brand / model / f"{k}.jpg", 40 * k + 10)
    _jpg(tmp_path / "aura" / "loose.jpg", 200)                       # no model folder: its own group
    (tmp_path / "bolt" / "m1" / "broken.jpg").write_bytes(b"\xff\xd8\xff not really a jpeg")
    (tmp_path / "cove" / "readme.txt").write_text("shop page notes")
    data = brands.load_photos(tmp_path, image_size=24, test_fraction=0.3, val_fraction=0.3, seed=0)
    assert data.classes == ["aura", "bolt", "cove"]
    assert data.images.shape == (19, 24, 24, 3)
    assert len(data.skipped) == 2 and {p.name for p, _ in data.skipped} == {"broken.jpg", "readme.txt"}
    assert len(np.unique(data.groups)) == 10
    for g in np.unique(data.groups):
        assert len(set(data.split[data.groups == g])) == 1
    assert data.counts().loc["aura", "total"] == 7


def test_color_histograms_by_hand():
    black = np.zeros((1, 4, 4, 3), np.uint8)
    half = np.zeros((1, 2, 2, 3), np.uint8)
    half[0, 0] = (255, 0, 0)                     # two red pixels of four
    h = color_histograms(np.concatenate([black, np.pad(half, ((0, 0), (0, 2), (0, 2), (0, 0)))]), bins=2)
    assert h.shape == (2, 8)
    np.testing.assert_allclose(h.sum(1), 1.0)
    assert h[0, 0] == 1.0
    # red = (1, 0, 0) -> code 1*4 + 0*2 + 0 = 4
    np.testing.assert_allclose(h[1, [0, 4]], [14 / 16, 2 / 16])


def test_class_weights_balance_the_loss():
    w = class_weights(np.array([0, 0, 0, 1]), 2).numpy()
    np.testing.assert_allclose(w, [4 / (2 * 3), 4 / (2 * 1)])
