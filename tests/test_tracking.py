import numpy as np
import pytest

import config
from cvtasks import tracking


@pytest.mark.parametrize("env, expected", [
    ({}, "offline"),
    ({"WANDB_API_KEY": "x" * 40}, "online"),
    ({"WANDB_API_KEY": "x" * 40, "CVTASKS_WANDB": "offline"}, "offline"),
    ({"WANDB_MODE": "disabled"}, "disabled"),
])
def test_mode_rules(monkeypatch, env, expected):
    for var in ("CVTASKS_WANDB", "WANDB_MODE", "WANDB_API_KEY"):
        monkeypatch.delenv(var, raising=False)
    for k, v in env.items():
        monkeypatch.setenv(k, v)
    assert tracking.wandb_mode() == expected


def test_bad_mode_is_refused(monkeypatch):
    monkeypatch.setenv("CVTASKS_WANDB", "sometimes")
    with pytest.raises(ValueError, match="CVTASKS_WANDB"):
        tracking.wandb_mode()


@pytest.mark.slow
def test_offline_run_lands_in_the_wandb_folder(tmp_path, monkeypatch):
    import matplotlib.pyplot as plt
    import pandas as pd

    monkeypatch.setattr(config, "WANDB_DIR", tmp_path)
    with tracking.Run("demo", config.get("fashion", quick=True), mode="offline") as run:
        run.log_history([{"epoch": 1, "train/loss": 1.0}, {"epoch": 2, "train/loss": 0.5}])
        fig, ax = plt.subplots()
        ax.plot([1, 2])
        run.log_figure("figures/curve", fig)
        run.log_table("tables/demo", pd.DataFrame({"a": [1, 2]}))
        run.summary({"test/acc": 0.9})
    runs = list((tmp_path / "wandb").glob("offline-run-*"))
    assert len(runs) == 1 and list(runs[0].glob("*.wandb"))


def test_projector_export(tmp_path):
    rng = np.random.default_rng(0)
    emb = rng.normal(size=(10, 8))
    images = rng.integers(0, 255, size=(10, 20, 20, 3), dtype=np.uint8)
    out = tracking.export_projector(emb, [f"brand{i % 3}" for i in range(10)], tmp_path, images=images)
    pbtxt = (out / "projector_config.pbtxt").read_text()
    assert "sprite" in pbtxt and "metadata_path" in pbtxt
    (folder,) = {p.parent for p in out.rglob("tensors.tsv")}
    assert len((folder / "tensors.tsv").read_text().splitlines()) == 10
    assert (folder / "metadata.tsv").read_text().splitlines()[0] == "brand0"
    assert (folder / "sprite.png").exists()
