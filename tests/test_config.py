import dataclasses

import pytest

import config


@pytest.mark.parametrize("task", list(config.TASKS))
def test_defaults_are_valid_and_quick_shrinks(task):
    full, quick = config.get(task, quick=False), config.get(task, quick=True)
    assert full.seed == quick.seed == config.SEED
    for name, value in type(full).QUICK.items():
        assert getattr(quick, name) == value
        if isinstance(value, (int, float)) and getattr(full, name) is not None:   # None: no limit
            assert value <= getattr(full, name), f"{task}.{name}: quick must not be larger"


def test_quick_switch_follows_environment(monkeypatch):
    monkeypatch.setenv(config.QUICK_ENV, "1")
    assert config.get("fashion").epochs == config.FashionConfig.QUICK["epochs"]
    monkeypatch.setenv(config.QUICK_ENV, "0")
    assert config.get("fashion").epochs == config.FashionConfig().epochs


def test_settings_are_frozen():
    with pytest.raises(dataclasses.FrozenInstanceError):
        config.get("brands").epochs = 3


@pytest.mark.parametrize("task, field, value, words", [
    ("brands", "n_images", -5, "BrandsConfig.n_images"),
    ("brands", "epochs", 0, "must be > 0"),
    ("brands", "encoder", "vgg", "BrandsConfig.encoder"),
    ("search", "text_encoder", "bert-huge", "one of all-MiniLM-L6-v2"),
    ("spill", "val_fraction", 1.5, "SpillConfig.val_fraction"),
    ("fashion", "dropout", -0.1, "FashionConfig.dropout"),
    ("serve", "port", "80", "must be a number"),
])
def test_bad_values_fail_early_naming_the_field(task, field, value, words):
    with pytest.raises(config.ConfigError, match=words):
        config.get(task, quick=False, **{field: value})


def test_unknown_task_is_refused():
    with pytest.raises(config.ConfigError, match="unknown task"):
        config.get("cats")


def test_paths_hang_off_the_repository_root():
    assert (config.ROOT / "config.py").exists()
    for path in (config.DATA_DIR, config.CACHE_DIR, config.MODELS_DIR, config.REPORTS_DIR):
        assert config.ROOT in path.parents
