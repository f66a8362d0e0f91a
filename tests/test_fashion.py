"""The Fashion task: augmentation, batches, data splits, training, checkpoint reuse, stages, dvc."""
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

import config
from cvtasks import fashion, fashion_report
from cvtasks.models.fashion_nets import FASHION_NETS, create_fashion_net

needs_mnist = pytest.mark.skipif(not config.FASHION_MNIST_DIR.exists(),
                                 reason="Debian dataset-fashion-mnist not installed")


def dot_image():
    x = torch.zeros(1, 1, 28, 28)
    x[0, 0, 10, 12] = 1.0
    return x


def test_crop_shifts_by_at_most_two_pixels():
    gen = torch.Generator().manual_seed(0)
    shifts = set()
    for _ in range(60):
        out = fashion.augment_batch(dot_image(), ("crop",), gen)
        assert out.shape == (1, 1, 28, 28) and out.sum() == 1.0
        y, x = (int(v) for v in torch.nonzero(out[0, 0])[0])
        shifts.add((y - 10, x - 12))
    assert all(abs(dy) <= 2 and abs(dx) <= 2 for dy, dx in shifts) and len(shifts) > 10


def test_flip_mirrors_about_half_of_the_images():
    x = dot_image().repeat(200, 1, 1, 1)
    out = fashion.augment_batch(x, ("flip",), torch.Generator().manual_seed(1))
    flipped = out[:, 0, 10, 28 - 1 - 12] == 1.0
    assert ((out[:, 0, 10, 12] == 1.0) ^ flipped).all() and 60 < int(flipped.sum()) < 140


def test_rotate_and_brightness_keep_range_and_are_seeded():
    x = torch.rand(8, 1, 28, 28)
    a = fashion.augment_batch(x, ("rotate", "brightness"), torch.Generator().manual_seed(3))
    b = fashion.augment_batch(x, ("rotate", "brightness"), torch.Generator().manual_seed(3))
    assert torch.equal(a, b) and a.min() >= 0 and a.max() <= 1 and not torch.allclose(a, x)


def test_batches_normalise_and_cover_every_image_once():
    images = np.arange(10 * 28 * 28, dtype=np.int64).reshape(10, 28, 28) % 256
    batches = fashion.Batches(images.astype(np.uint8), np.arange(10), 4, mean=0.5, std=0.25, shuffle=True, seed=0)
    assert len(batches) == 3
    seen = torch.cat([y for _, y in batches])
    assert sorted(seen.tolist()) == list(range(10))
    x, y = next(iter(fashion.Batches(images.astype(np.uint8), np.arange(10), 10, mean=0.5, std=0.25)))
    expected = (torch.from_numpy(images[3].astype(np.float32)) / 255 - 0.5) / 0.25
    assert torch.allclose(x[3, 0], expected)


@pytest.mark.parametrize("name", list(FASHION_NETS))
def test_nets_take_28x28_and_give_10_logits(name):
    for batchnorm in (True, False):
        net = create_fashion_net(name, dropout=0.5, batchnorm=batchnorm).eval()
        assert net(torch.zeros(3, 1, 28, 28)).shape == (3, 10)
        assert any(isinstance(m, torch.nn.BatchNorm2d) for m in net.modules()) == batchnorm


def test_bad_settings_are_named():
    with pytest.raises(ValueError, match="unknown fashion net"):
        create_fashion_net("vgg")
    with pytest.raises(config.ConfigError, match="FashionConfig.augment"):
        config.get("fashion", augment="crop,zoom")
    with pytest.raises(config.ConfigError, match="train_size"):
        config.get("fashion", train_size=58000, val_size=5000)


def test_params_yaml_is_the_source_of_the_defaults():
    import yaml

    params = yaml.safe_load((config.ROOT / "params.yaml").read_text())["fashion"]
    defaults = config.FashionConfig()
    assert set(params) <= set(defaults.to_dict())
    assert {k: getattr(defaults, k) for k in params} == params


def test_precision_setting_maps_to_an_autocast_dtype(monkeypatch):
    from cvtasks import train

    assert fashion.training_precision("fp32", "cpu") is None
    assert fashion.training_precision("bf16", "cpu") == torch.bfloat16
    monkeypatch.setattr(train, "_cpu_has_amx", lambda: False)   # auto on a CPU without AMX: float32
    assert fashion.training_precision("auto", "cpu") is None
    with pytest.raises(config.ConfigError, match="precision"):
        config.get("fashion", precision="fp16")


def test_quick_model_never_overwrites_the_full_one():
    assert fashion.default_model_path(config.get("fashion", quick=False)) == config.FASHION_MODEL
    assert fashion.default_model_path(config.get("fashion", quick=True)) != config.FASHION_MODEL


def test_worst_mistakes_are_confident_wrong_ones():
    labels = np.array([0, 1, 2, 0])
    probs = np.array([[0.9, 0.1, 0], [0.8, 0.2, 0], [0.3, 0.6, 0.1], [0.4, 0.6, 0]])
    assert fashion.worst_mistakes(labels, probs, 2).tolist() == [1, 2]


def test_targets_table_reports_margins():
    metrics = {"test/accuracy": 0.93, "test/top3": 0.995, "test/macro_f1": 0.95,
               "test/min_class_precision": 0.8, "test/min_class_recall": 0.9}
    table = fashion_report.targets_table(metrics)
    assert table.loc["test/accuracy", "margin"] == pytest.approx(-0.01)
    assert table["met"].tolist() == [False, True, True, False, True]


@needs_mnist
def test_prepare_holds_out_a_stratified_validation_split():
    data = fashion.prepare_data(config.get("fashion", train_size=3000, val_size=1000))
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
    data = fashion.prepare_data(cfg)
    model, meta = fashion.train_final(cfg, data, tmp_path / "m.pt", device="cpu")
    metrics, probs = fashion.evaluate_model(model, meta, data, cfg, device="cpu")
    assert probs.shape == (10000, 10) and np.allclose(probs.sum(1), 1, atol=1e-4)
    for key in ("test/accuracy", "test/top3", "test/macro_f1", "test/min_class_precision", "test/min_class_recall"):
        assert 0 <= metrics[key] <= 1
    assert metrics["test/accuracy"] > 0.6 and metrics["test/top3"] > metrics["test/accuracy"]
    assert meta["classes"][6] == "Shirt" and len(meta["history"]) == 2

    monkeypatch.setattr(fashion, "train_model", lambda *a, **k: pytest.fail("retrained an unchanged config"))
    again, meta2 = fashion.train_final(cfg, data, tmp_path / "m.pt")
    assert meta2["training_key"] == meta["training_key"]
    for a, b in zip(model.state_dict().values(), again.state_dict().values()):
        assert torch.equal(a, b)


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


@needs_mnist
@pytest.mark.slow
def test_dvc_repro_in_quick_mode_from_a_fresh_clone(tmp_path):
    repo = _copy_of_the_repo(tmp_path / "clone")
    env = {**os.environ, config.QUICK_ENV: "1",
           "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
    git = ["git", "-c", "user.name=t", "-c", "user.email=t@t"]
    for cmd in (["git", "init", "-q"], ["git", "add", "-A"], git + ["commit", "-qm", "clone"]):
        subprocess.run(cmd, cwd=repo, check=True, env=env)
    dvc = [sys.executable, "-m", "dvc"]
    out = subprocess.run(dvc + ["repro"], cwd=repo, env=env, capture_output=True, text=True)
    assert out.returncode == 0, out.stdout + out.stderr
    metrics = json.loads((repo / "reports/fashion/metrics.json").read_text())
    assert metrics["test/accuracy"] > 0.80   # quick mode still beats 0.80
    exported = json.loads((repo / "reports/fashion/export.json").read_text())  # the export stage ran
    assert exported["export/onnx_top1_agreement"] >= 0.999 and (repo / "models/fashion/model.int8.onnx").exists()
    shown = subprocess.run(dvc + ["metrics", "show", "--json"], cwd=repo, env=env, capture_output=True,
                           text=True, check=True).stdout
    assert "test/macro_f1" in shown
    status = subprocess.run(dvc + ["status"], cwd=repo, env=env, capture_output=True, text=True, check=True)
    assert "up to date" in status.stdout.lower()


def test_unreadable_checkpoint_is_retrained_and_saved_with_its_metadata(tmp_path, monkeypatch, capsys):
    from cvtasks.train import History

    path = tmp_path / "model.pt"
    path.write_bytes(b"not a checkpoint")
    cfg = config.get("fashion", quick=True)
    images = np.full((20, 28, 28), 51, np.uint8)
    data = fashion.FashionData(*(images, np.arange(20) % 10) * 3)
    calls = []

    def fake_train(data, cfg, **kwargs):
        calls.append(cfg)
        history = History("val/acc", "max", epochs=[{"epoch": 1, "val/acc": 0.5}], best_epoch=1, seconds=2.0)
        return create_fashion_net(cfg.model, width=cfg.width), history

    monkeypatch.setattr(fashion, "train_model", fake_train)
    fashion.train_final(cfg, data, path)
    assert len(calls) == 1 and "unreadable" in capsys.readouterr().out
    model, meta = fashion.load_classifier(path)
    assert meta["training_key"] == fashion.training_key(cfg) and meta["classes"][0] == "T-shirt/top"
    assert meta["mean"] == pytest.approx(0.2) and meta["std"] == pytest.approx(0.0, abs=1e-6)
    assert meta["arch"] == {"name": cfg.model, "width": cfg.width, "dropout": cfg.dropout, "batchnorm": cfg.batchnorm}
