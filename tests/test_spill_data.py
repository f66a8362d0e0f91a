"""The well generator and the photo-folder path of the spill task."""
import numpy as np
import pytest
from PIL import Image

import config
from cvtasks.data.wells import LIGHTING, WellSettings, generate_wells
from cvtasks.spill import data as spill


@pytest.fixture(scope="module")
def wells():
    return generate_wells(WellSettings(n_images=120, size=64, seed=3), cache=False)


def test_generator_is_deterministic_and_prefix_stable(wells):
    again = generate_wells(WellSettings(n_images=120, size=64, seed=3), cache=False)
    np.testing.assert_array_equal(wells.images, again.images)
    np.testing.assert_array_equal(wells.lighting, again.lighting)
    other = generate_wells(WellSettings(n_images=120, size=64, seed=4), cache=False)
    assert not np.array_equal(wells.images, other.images)


def test_classes_are_balanced_and_spills_have_an_area(wells):
    assert wells.images.shape == (120, 64, 64, 3) and wells.images.dtype == np.uint8
    assert np.bincount(wells.labels).tolist() == [60, 60]
    assert np.all(wells.spill_area[wells.labels == 0] == 0)
    spills = wells.spill_area[wells.labels == 1]
    assert spills.min() > 0.002 and spills.max() < 0.3
    assert spills.max() / spills.min() > 5          # from small to large spills


def test_every_lighting_condition_is_recorded(wells):
    assert set(wells.lighting) == set(LIGHTING)
    for cls in (0, 1):                                # nuisances hit both classes
        assert len(set(wells.lighting[wells.labels == cls])) >= 5
    assert 0.1 < wells.smoke.mean() < 0.5
    # dim light really is darker than bright light
    brightness = wells.images.reshape(len(wells), -1).mean(1)
    assert brightness[wells.lighting == "dim"].mean() < brightness[wells.lighting == "bright"].mean() - 40


def test_generated_set_is_cached_by_its_settings(tmp_path, monkeypatch):
    monkeypatch.setattr(config, "CACHE_DIR", tmp_path)
    first = generate_wells(WellSettings(n_images=6, size=32))
    assert len(list(tmp_path.glob("wells-*.npz"))) == 1
    second = generate_wells(WellSettings(n_images=6, size=32))
    np.testing.assert_array_equal(first.images, second.images)
    generate_wells(WellSettings(n_images=8, size=32))
    assert len(list(tmp_path.glob("wells-*.npz"))) == 2


def test_bad_settings_are_named():
    with pytest.raises(ValueError, match="size"):
        WellSettings(size=8)
    with pytest.raises(ValueError, match="spill areas"):
        WellSettings(min_spill_area=0.1, max_spill_area=0.05)


def test_photo_folder_is_loaded_and_bad_files_skipped(tmp_path, capsys):
    rng = np.random.default_rng(0)
    for cls, n in (("normal", 4), ("spill", 3)):
        (tmp_path / cls).mkdir()
        for i in range(n):
            Image.fromarray(rng.integers(0, 255, (40, 50, 3), dtype=np.uint8)).save(tmp_path / cls / f"{i}.png")
    (tmp_path / "spill" / "broken.jpg").write_bytes(b"not a jpeg")
    cfg = config.get("spill", quick=True, photos_dir=tmp_path, image_size=32)
    data = spill.load_data(cfg)
    assert data.images.shape == (7, 32, 32, 3)
    assert data.labels.tolist() == [0, 0, 0, 0, 1, 1, 1]
    assert set(data.lighting) == {"unknown"}
    assert "1 unreadable" in capsys.readouterr().out
