"""W&B tracking: the mode rules, and what a run holds when read back with wandb's own reader."""
import json
import subprocess
import sys
from pathlib import Path

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


def test_bad_job_type_is_refused():
    with pytest.raises(ValueError, match="job_type"):
        tracking.Tracker("styles", {}, job_type="party", mode="disabled")


def read_run(folder: Path) -> tuple[dict, list[dict]]:
    """A run's state (``--summary``) and its records, through wandb's own reader."""
    wandb = [str(Path(sys.executable).parent / "wandb"), "leet", "inspect"]
    state = json.loads(subprocess.run(wandb + ["--summary", "--json", str(folder)], capture_output=True, text=True,
                                      check=True).stdout)
    records = [json.loads(line) for line in subprocess.run(wandb + ["--json", str(folder)], capture_output=True,
                                                           text=True, check=True).stdout.splitlines() if line]
    return state, records


@pytest.mark.slow
def test_cli_run_reads_back_with_wandbs_reader(tmp_path):
    """The spill task's CLI in quick mode, W&B offline: name, tags, config, every model's curves
    on its own step axis, summary equal to metrics.json, tables and artifacts are in the run."""
    env = {**__import__("os").environ, "CVTASKS_WANDB": "offline", "TQDM_DISABLE": "1"}
    subprocess.run([sys.executable, "-W", "ignore", "-m", "cvtasks", "run", "spill", "--quick", "--out", str(tmp_path)],
                   cwd=config.ROOT, env=env, check=True, capture_output=True)
    (folder,) = (tmp_path / "wandb").glob("offline-run-*")
    state, records = read_run(folder)
    metrics = json.loads((tmp_path / "reports/spill/quick/metrics.json").read_text())
    assert state["state"] == "finished" and state["name"].startswith("spill-quick-cli-")
    assert {"spill", "quick", "cli", "train"} <= set(state["tags"]) and any(t.startswith("commit:") for t in state["tags"])
    assert state["config"]["quick"] is True and state["config"]["seeds"] == 2 and "commit" in state["config"]
    summary = {k: v for k, v in state["summary"].items() if not k.startswith("_")}
    assert summary == pytest.approx(metrics)
    artifacts = {r["artifact"]["type"] for r in records if r["type"] == "artifact"}
    assert {"dataset", "model", "run_table"} <= artifacts
    axes = {r["metric"].get("step_metric") for r in records if r["type"] == "metric"} - {None, ""}
    assert {"autoencoder_seed42/epoch", "autoencoder_seed43/epoch", "supervised_seed42/epoch"} <= axes
    curves = [r["history"]["item"] for r in records if r["type"] == "history"
              and "autoencoder_seed42/val/normal_loss" in r["history"]["item"]]
    assert len(curves) == config.get("spill", quick=True).epochs


def test_projector_export(tmp_path):
    rng = np.random.default_rng(0)
    emb = rng.normal(size=(10, 8))
    images = rng.integers(0, 255, size=(10, 20, 20, 3), dtype=np.uint8)
    out = tracking.export_projector(emb, [f"brand{i % 3}" for i in range(10)], tmp_path / "p", images=images)
    out = tracking.export_projector(emb, [f"brand{i % 3}" for i in range(10)], tmp_path / "p", images=images)
    pbtxt = (out / "projector_config.pbtxt").read_text()
    assert "sprite" in pbtxt and "metadata_path" in pbtxt
    (folder,) = {p.parent for p in out.rglob("tensors.tsv")}   # a re-export replaces, not adds
    assert len((folder / "tensors.tsv").read_text().splitlines()) == 10
    assert (folder / "metadata.tsv").read_text().splitlines()[0] == "brand0"
    assert (folder / "sprite.png").exists()


def test_a_table_with_mixed_column_types_is_logged_as_text(tmp_path):
    """W&B types a table column by its first row; a recipe table mixes numbers and names."""
    import pandas as pd

    tracker = tracking.Tracker("fashion", {}, mode="offline", wandb_dir=tmp_path)
    frame = pd.DataFrame({"study's winner": [0.003, "adam", True], "final": [0.003, "adam", True]},
                         index=pd.Index(["lr", "optimizer", "batchnorm"], name="field"))
    tracker.log_table("study/winner", frame)
    tracker.finish({"x": 1.0})
    (folder,) = (tmp_path / "wandb").glob("offline-run-*")
    state, _ = read_run(folder)
    assert state["state"] == "finished"
