"""The Fashion task: nets, settings, data splits, training, checkpoint reuse, the DVC pipeline."""
import dataclasses
import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

import config
from cvtasks.fashion import data as fdata
from cvtasks.fashion import evaluation, findings, training
from cvtasks.models import fashion_classifier as classifier
from cvtasks.models.fashion_nets import FASHION_NETS, create_fashion_net
from cvtasks.provenance import file_sha256

needs_mnist = pytest.mark.skipif(not config.FASHION_MNIST_DIR.exists(),
                                 reason="Debian dataset-fashion-mnist not installed")


@pytest.mark.parametrize("name", list(FASHION_NETS))
def test_nets_take_28x28_and_give_10_logits(name):
    for batchnorm in (True, False):
        net = create_fashion_net(name, 10, dropout=0.5, batchnorm=batchnorm,
                                 width=config.FASHION_FAMILY_WIDTH[name]).eval()
        assert net(torch.zeros(3, 1, 28, 28)).shape == (3, 10)
        assert any(isinstance(m, torch.nn.BatchNorm2d) for m in net.modules()) == batchnorm


def test_bad_settings_are_named():
    with pytest.raises(ValueError, match="unknown fashion net"):
        create_fashion_net("vgg", 10, dropout=0.5, batchnorm=True, width=8)
    with pytest.raises(config.ConfigError, match="FashionConfig.augment"):
        config.get("fashion", augment="crop,zoom")
    with pytest.raises(config.ConfigError, match="train_size"):
        config.get("fashion", train_size=58000, val_size=5000)


def test_dvc_reads_the_defaults_from_config_py():
    """DVC's own parser of Python params files sees every literal default of FashionConfig."""
    from dvc.utils.serialize import load_py

    parsed = load_py(str(config.ROOT / "config.py"))
    defaults = config.FashionConfig()
    seen = parsed["FashionConfig"]
    literal = {f.name for f in dataclasses.fields(defaults) if f.name not in {"mnist_dir", "paths", "seed", "quick"}}
    assert literal <= set(seen), f"DVC cannot read {literal - set(seen)}: keep those defaults plain literals"
    assert {k: seen[k] for k in literal} == {k: getattr(defaults, k) for k in literal}
    assert parsed["TaskConfig"]["seed"] == config.SEED == defaults.seed


def test_precision_setting_maps_to_an_autocast_dtype(monkeypatch):
    from cvtasks import train

    assert training.training_precision("fp32", "cpu") is None
    assert training.training_precision("bf16", "cpu") == torch.bfloat16
    monkeypatch.setattr(train, "_cpu_has_amx", lambda: False)   # auto on a CPU without AMX: float32
    assert training.training_precision("auto", "cpu") is None
    with pytest.raises(config.ConfigError, match="precision"):
        config.get("fashion", precision="fp16")


def test_quick_model_never_overwrites_the_full_one():
    full = classifier.model_path(config.get("fashion", quick=False))
    assert full.name == "model.pt"
    assert classifier.model_path(config.get("fashion", quick=True)) != full
    assert classifier.model_path(config.get("fashion", lr=0.001)) != full   # a study's recipe neither


def test_worst_mistakes_are_confident_wrong_ones():
    labels = np.array([0, 1, 2, 0])
    probs = np.array([[0.9, 0.1, 0], [0.8, 0.2, 0], [0.3, 0.6, 0.1], [0.4, 0.6, 0]])
    assert evaluation.worst_mistakes(labels, probs, 2).tolist() == [1, 2]


def test_targets_table_reports_margins():
    metrics = {"test/accuracy": 0.93, "test/top3": 0.995, "test/macro_f1": 0.95,
               "test/min_class_precision": 0.8, "test/min_class_recall": 0.9}
    targets = {"test/accuracy": 0.94, "test/top3": 0.99, "test/macro_f1": 0.95,
               "test/min_class_precision": 0.85, "test/min_class_recall": 0.85}
    table = findings.targets_table(metrics, targets)
    assert table.loc["test/accuracy", "margin"] == pytest.approx(-0.01)
    assert table["met"].tolist() == ["NO", "yes", "yes", "NO", "yes"]
    # a figure below its target whose interval reaches the target cannot be told from it
    metrics.update({"test/min_class_precision_ci_low": 0.78, "test/min_class_precision_ci_high": 0.86,
                    "test/accuracy_ci_low": 0.925, "test/accuracy_ci_high": 0.935})
    assert findings.targets_table(metrics, targets)["met"].tolist() == ["NO", "yes", "yes", "no difference", "yes"]


@needs_mnist
def test_prepare_holds_out_a_stratified_validation_split():
    data = fdata.prepare_data(config.get("fashion", train_size=3000, val_size=1000))
    assert len(data.y_train) == 3000 and len(data.y_val) == 1000 and len(data.y_test) == 10000
    assert (np.bincount(data.y_val) == 100).all() and (np.bincount(data.y_train) == 300).all()
    train_set = {x.tobytes() for x in data.x_train}
    assert sum(x.tobytes() in train_set for x in data.x_val) <= 5   # Fashion-MNIST has a few duplicates
    mean, std = data.mean_std
    assert 0.25 < mean < 0.32 and 0.3 < std < 0.4


@needs_mnist
@pytest.mark.slow
def test_small_run_learns_and_its_checkpoint_is_reused(tmp_path, monkeypatch):
    cfg = config.get("fashion", quick=True, train_size=1000, val_size=500, epochs=2, train_eval_size=500)
    data = fdata.prepare_data(cfg)
    model, meta = training.train_final(cfg, data, tmp_path / "m.pt", device="cpu")
    probs = training.predict_proba(model, data.x_test, meta["mean"], meta["std"], device="cpu")
    metrics = evaluation.split_metrics(data.y_test, probs, "test")
    assert probs.shape == (10000, 10) and np.allclose(probs.sum(1), 1, atol=1e-4)
    assert metrics["test/accuracy"] > 0.6 and metrics["test/top3"] > metrics["test/accuracy"]
    assert meta["classes"][6] == "Shirt" and len(meta["history"]) == 2

    record = json.loads(classifier.record_path(tmp_path / "m.pt").read_text())   # the training record beside it
    assert record["sha256"] == file_sha256(tmp_path / "m.pt") and record["training_key"] == meta["training_key"]
    assert record["device"] and len(record["history"]) == 2 and record["config"]["epochs"] == 2
    choice = record["logit_offset"]   # chosen on validation, carried by the checkpoint, folded when loaded
    assert choice == meta["logit_offset"] and choice["class_name"] == meta["classes"][choice["class"]]
    raw, served = classifier.load_classifier(tmp_path / "m.pt", offset=False)[0], classifier.load_classifier(tmp_path / "m.pt")[0]
    x = torch.rand(3, 1, 28, 28)
    with torch.no_grad():
        assert torch.allclose(served(x) - raw(x), torch.eye(10)[choice["class"]] * choice["offset"], atol=1e-5)

    monkeypatch.setattr(training, "train_model", lambda *a, **k: pytest.fail("retrained an unchanged config"))
    again, meta2 = training.train_final(cfg, data, tmp_path / "m.pt")
    assert meta2["training_key"] == meta["training_key"] and meta2["reused"]
    for a, b in zip(model.state_dict().values(), again.state_dict().values()):
        assert torch.equal(a, b)


def test_committed_weights_are_the_default_recipes_and_match_their_record():
    """weights/fashion/model.pt is what `run fashion` reuses: its training key is the default
    recipe's, and its record names these bytes."""
    path = classifier.model_path(config.FashionConfig())
    assert path == config.WEIGHTS_DIR / "fashion" / "model.pt"
    record = json.loads(classifier.record_path(path).read_text())
    assert record["sha256"] == file_sha256(path)
    assert record["training_key"] == classifier.training_key(config.FashionConfig())
    _, meta = classifier.load_classifier(path)
    assert meta["training_key"] == record["training_key"] and meta["logit_offset"] == record["logit_offset"]


def test_train_command_writes_a_candidates_checkpoint_and_record(tmp_path, capsys):
    from cvtasks.cli import main

    assert main(["train", "fashion", "--quick", "--candidate", next(iter(config.FASHION_CANDIDATES)),
                 "--seed", "7", "--out", str(tmp_path)]) == 0
    name = f"model-{next(iter(config.FASHION_CANDIDATES))}-7"
    record = json.loads((tmp_path / f"{name}.json").read_text())
    assert record["config"]["seed"] == 7 and record["config"]["label_smoothing"] > 0   # the candidate's field
    assert record["config"]["epochs"] == config.FashionConfig.QUICK["epochs"]            # quick sizes kept
    assert "val/acc" in capsys.readouterr().out


def _copy_of_the_repo(dest: Path) -> Path:
    """The working tree's tracked and unignored files, as a fresh clone would have them."""
    files = subprocess.run(["git", "ls-files", "-co", "--exclude-standard", "-z"], cwd=config.ROOT,
                           capture_output=True, check=True).stdout.decode().split("\0")
    for name in filter(None, files):
        src = config.ROOT / name
        if src.is_file() and not name.endswith(".ipynb"):
            (dest / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, dest / name)
    return dest


def test_dvc_pipeline_from_a_fresh_clone(tmp_path):
    """In a fresh clone DVC parses the pipeline and its parameters from config.py: both stages are
    due, their commands are the CLI's, and changing a FashionConfig default shows as a param change."""
    repo = _copy_of_the_repo(tmp_path / "clone")
    git = ["git", "-c", "user.name=t", "-c", "user.email=t@t"]
    for cmd in (["git", "init", "-q"], ["git", "add", "-A"], git + ["commit", "-qm", "clone"]):
        subprocess.run(cmd, cwd=repo, check=True, capture_output=True)
    dvc = [sys.executable, "-m", "dvc"]
    dry = subprocess.run(dvc + ["repro", "--dry"], cwd=repo, capture_output=True, text=True)
    assert dry.returncode == 0, dry.stdout + dry.stderr
    assert "scripts/python -m cvtasks study fashion" in dry.stdout
    assert "scripts/python -m cvtasks run fashion" in dry.stdout
    config_py = repo / "config.py"
    epochs = config.FashionConfig.epochs
    config_py.write_text(config_py.read_text().replace(f"    epochs: int = {epochs}", f"    epochs: int = {epochs + 1}", 1))
    diff = subprocess.run(dvc + ["params", "diff", "--all"], cwd=repo, capture_output=True, text=True)
    assert diff.returncode == 0 and "FashionConfig.epochs" in diff.stdout and str(epochs + 1) in diff.stdout, diff.stdout


def test_unreadable_checkpoint_is_retrained_and_saved_with_its_metadata(tmp_path, monkeypatch, capsys):
    from cvtasks.train import History

    path = tmp_path / "model.pt"
    path.write_bytes(b"not a checkpoint")
    cfg = config.get("fashion", quick=True)
    images = np.full((20, 28, 28), 51, np.uint8)
    data = fdata.FashionData(*(images, np.arange(20) % 10) * 3)
    calls = []

    def fake_train(data, cfg, **kwargs):
        calls.append(cfg)
        history = History("val/acc", "max", epochs=[{"epoch": 1, "val/acc": 0.5}], best_epoch=1, seconds=2.0)
        return create_fashion_net(cfg.model, 10, dropout=cfg.dropout, batchnorm=cfg.batchnorm, width=cfg.width), history

    monkeypatch.setattr(training, "train_model", fake_train)
    training.train_final(cfg, data, path)
    assert len(calls) == 1 and "unreadable" in capsys.readouterr().out
    model, meta = classifier.load_classifier(path)
    assert meta["training_key"] == classifier.training_key(cfg) and meta["classes"][0] == "T-shirt/top"
    assert meta["mean"] == pytest.approx(0.2) and meta["std"] == pytest.approx(0.0, abs=1e-6)
    assert meta["arch"] == {"name": cfg.model, "width": cfg.width, "depth": cfg.depth, "dropout": cfg.dropout,
                            "batchnorm": cfg.batchnorm}


def test_shirt_recall_correlation_uses_completed_trials_only():
    import pandas as pd

    from cvtasks.fashion import study

    trials = pd.DataFrame({"state": ["COMPLETE"] * 4 + ["PRUNED"], "value": [0.90, 0.91, 0.92, 0.93, 0.10],
                           "shirt_recall": [0.70, 0.72, 0.71, 0.80, 0.99]})
    assert study.shirt_recall_vs_accuracy(trials) == pytest.approx(0.8)


def _schedule_entry(recipe: dict, pred: np.ndarray, flip: np.ndarray, labels: np.ndarray, seconds: float = 60.0):
    from cvtasks.cache import fingerprint

    return {"recipe": recipe, "history": [{"epoch": 1, "val/acc": 0.5, "seconds": seconds}], "best_epoch": 1,
            "train_seconds": seconds, "cpu": "test CPU", "date_utc": "2026-01-01T00:00:00Z",
            "val_labels": fingerprint(labels.tolist()), "val_pred": pred.tolist(), "val_pred_flip": flip.tolist()}


def test_schedules_compare_recipes_on_the_same_validation_images_only(tmp_path):
    from cvtasks.fashion import schedules

    rng = np.random.default_rng(0)
    y = rng.integers(0, 10, 2000)
    from cvtasks.data.fashion_mnist import CLASSES as classes
    final = {f: getattr(config.FashionConfig(), f) for f in classifier.TRAINING_FIELDS}
    other = {**final, "augment": "none" if final["augment"] != "none" else "crop"}

    def wrong(share: float) -> np.ndarray:   # predictions with ``share`` of them wrong
        pred = y.copy()
        miss = rng.random(len(y)) < share
        pred[miss] = (y[miss] + 1) % 10
        return pred

    path = tmp_path / "schedules.json"
    schedules.record(path, "final", _schedule_entry(final, wrong(0.05), wrong(0.02), y))
    schedules.record(path, "other", _schedule_entry(other, wrong(0.15), wrong(0.15), y))
    entries = schedules.record(path, "elsewhere", _schedule_entry(other, wrong(0.0), wrong(0.0), y[::-1]))
    assert set(schedules.load(path)) == {"final", "other", "elsewhere"}

    table = schedules.comparison(entries, "final", y, list(classes), tta_flip=False, count=300, seed=0)
    assert list(table.index) == ["final recipe", f"augment={other['augment']}"]   # other labels: left out
    row = table.loc[f"augment={other['augment']}"]
    assert row.minus_final == pytest.approx(row.val_acc - table.loc["final recipe", "val_acc"])
    assert row.minus_final_high < 0 < table.loc["final recipe", "val_acc_high"]
    assert table.loc["final recipe", "minus_final"] == 0
    gain = schedules.flip_gain(entries["final"], y, count=300, seed=0)
    assert gain.low > 0 and gain.value == pytest.approx(0.03, abs=0.015)   # 2 % wrong with flip, 5 % without
    assert set(schedules.curves(entries, "final")) == {"final recipe", f"augment={other['augment']}"}


def test_schedules_keep_a_recipes_cpu_and_gpu_runs_apart_and_spread_seeds(tmp_path):
    from cvtasks.fashion import schedules

    rng = np.random.default_rng(1)
    y = rng.integers(0, 10, 500)
    final = {f: getattr(config.FashionConfig(), f) for f in classifier.TRAINING_FIELDS}
    old = {**final, "epochs": 20}
    assert schedules.entry_key({"training_key": "k", "device": "NVIDIA H200 (CUDA)"}) == "k@cuda"
    assert schedules.entry_key({"training_key": "k"}) == "k@cpu"   # checkpoints from before GPU runs

    def entry(recipe, device, acc=0.9, **extra):
        e = _schedule_entry(recipe, y, y, y)
        e["history"] = [{"epoch": 1, "val/acc": acc, "seconds": 10.0}, {"epoch": 2, "val/acc": acc, "seconds": 20.0}]
        return {**e, "best_epoch": 2, "cpu": device, **extra}

    entries = {"f@cuda": entry(final, "NVIDIA H200 (CUDA)", 0.95, cpu_epoch_seconds=90.0),
               "f43@cuda": entry({**final, "seed": 43}, "NVIDIA H200 (CUDA)", 0.93),
               "o@cpu": entry(old, "AMD EPYC (AVX2)"), "o@cuda": entry(old, "NVIDIA H200 (CUDA)")}
    names = schedules.names(entries, "f@cuda")
    assert names["f@cuda"] == "final recipe" and "f43@cuda" not in names   # another seed: not paired
    assert names["o@cpu"].endswith("(CPU)") and names["o@cuda"].endswith("(GPU)")
    curves = schedules.curves(entries, "f@cuda")
    assert list(curves["final recipe"]["cpu_seconds"]) == [90.0, 180.0]        # epochs x measured CPU cost
    assert list(curves[names["o@cpu"]]["cpu_seconds"]) == [10.0, 20.0]         # as it ran
    assert "cpu_seconds" not in curves[names["o@cuda"]]                         # no CPU cost measured: left out
    spread = schedules.seed_spread(entries, "f@cuda")
    row = spread.loc["final recipe (GPU)"]
    assert row.seeds == 2 and row.val_acc_mean == pytest.approx(0.94) and row.val_acc_min == pytest.approx(0.93)
