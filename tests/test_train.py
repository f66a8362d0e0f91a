"""The shared training loop: learns, stops early, checkpoints, restores the best, repeats exactly."""
import pytest
import torch
from torch import nn

from cvtasks.batches import Batches, augment
from cvtasks.train import FitOptions, accuracy, fit, load_checkpoint, validate

CE = nn.functional.cross_entropy


def _blobs(n=256, seed=0, batch_size=32, shuffle=False):
    g = torch.Generator().manual_seed(seed)
    y = torch.randint(0, 3, (n,), generator=g)
    centres = torch.tensor([[2.0, 0.0], [-2.0, 0.0], [0.0, 2.5]])
    x = centres[y] + 0.6 * torch.randn(n, 2, generator=g)
    return Batches(x, y, batch_size, shuffle=shuffle, seed=seed)


def _setup(seed=0, lr=0.05):
    torch.manual_seed(seed)
    model = nn.Sequential(nn.Linear(2, 16), nn.ReLU(), nn.Linear(16, 3))
    return model, torch.optim.Adam(model.parameters(), lr=lr)


def test_fit_learns_and_records_history(tmp_path):
    model, opt = _setup()
    train = _blobs(shuffle=True)
    val = _blobs(seed=1, batch_size=64)
    before = validate(model, val, CE, {"acc": accuracy})["val/acc"]
    hist = fit(model, train, val, optimizer=opt, loss_fn=CE, metrics={"acc": accuracy},
               options=FitOptions(epochs=8, monitor="val/acc", mode="max", seed=0, checkpoint=tmp_path / "best.pt",
                                  train_metrics=True))
    assert [row["epoch"] for row in hist.epochs] == list(range(1, 9))
    assert {"train/loss", "train/acc", "val/loss", "val/acc", "lr", "seconds"} <= set(hist.epochs[0])
    after = validate(model, val, CE, {"acc": accuracy})["val/acc"]
    assert before < 0.6 < 0.9 < after
    assert after == pytest.approx(hist.best_score)  # the best weights are the ones kept
    meta = load_checkpoint(tmp_path / "best.pt", _setup()[0])
    assert meta["epoch"] == hist.best_epoch and meta["monitor"] == "val/acc"
    assert hist.frame().shape[0] == 8


def test_early_stopping_stops_after_patience():
    model, opt = _setup(lr=0.0)  # nothing changes: the first epoch stays the best
    hist = fit(model, _blobs(64), _blobs(64, 1, batch_size=64), optimizer=opt, loss_fn=CE,
               options=FitOptions(epochs=20, patience=3, min_delta=1e-6))
    assert hist.stopped_early and len(hist.epochs) == 4 and hist.best_epoch == 1


def test_same_seed_same_result():
    losses = []
    for _ in range(2):
        model, opt = _setup()
        hist = fit(model, _blobs(batch_size=16, shuffle=True), optimizer=opt, loss_fn=CE,
                   options=FitOptions(epochs=2, seed=7))
        losses.append(hist.series("train/loss"))
    assert losses[0] == losses[1]


def test_tuple_inputs_and_no_validation_loader():
    class Pair(nn.Module):
        def __init__(self):
            super().__init__()
            self.a, self.b = nn.Linear(2, 1), nn.Linear(2, 1)

        def forward(self, x1, x2):
            return (self.a(x1) + self.b(x2)).squeeze(1)

    x1, x2 = torch.randn(64, 2), torch.randn(64, 2)
    y = x1[:, 0] - x2[:, 1]
    model = Pair()
    hist = fit(model, Batches((x1, x2), y, 16), optimizer=torch.optim.Adam(model.parameters(), 0.05),
               loss_fn=nn.functional.mse_loss, options=FitOptions(epochs=30, seed=0))
    assert hist.monitor == "train/loss"
    assert hist.series("train/loss")[-1] < 0.1 * hist.series("train/loss")[0]


def test_diverging_loss_is_reported():
    model, _ = _setup()
    opt = torch.optim.SGD(model.parameters(), lr=1e30)
    with pytest.raises(FloatingPointError, match="learning rate"):
        fit(model, _blobs(), optimizer=opt, loss_fn=CE, options=FitOptions(epochs=3))


@pytest.mark.gpu
def test_fit_uses_cuda_when_present():
    model, opt = _setup()
    fit(model, _blobs(), optimizer=opt, loss_fn=CE, options=FitOptions(epochs=1))
    assert next(model.parameters()).device.type == "cuda"


def test_per_batch_scheduler_steps_every_batch_and_per_epoch_only_once():
    for per_batch, expected in ((True, 2 * 8), (False, 2)):
        model, opt = _setup()
        sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda step: 1.0)
        fit(model, _blobs(256), optimizer=opt, loss_fn=CE,
            options=FitOptions(epochs=2, scheduler=sched, scheduler_per_batch=per_batch))
        assert sched.last_epoch == expected


def test_bfloat16_autocast_trains_and_keeps_float32_weights():
    model, opt = _setup()
    hist = fit(model, _blobs(shuffle=True), _blobs(seed=1, batch_size=64), optimizer=opt, loss_fn=CE,
               metrics={"acc": accuracy},
               options=FitOptions(epochs=6, monitor="val/acc", mode="max", seed=0, autocast=torch.bfloat16))
    assert hist.best_score > 0.9
    assert all(p.dtype == torch.float32 for p in model.parameters())


def test_autocast_dtype_never_claims_bf16_without_the_hardware(monkeypatch):
    from cvtasks import train

    monkeypatch.setattr(train, "_cpu_has_amx", lambda: False)
    assert train.autocast_dtype("cpu") is None
    monkeypatch.setattr(train, "_cpu_has_amx", lambda: True)
    assert train.autocast_dtype("cpu") == (torch.bfloat16 if torch.backends.mkldnn.is_available() else None)


def test_bad_options_are_refused():
    with pytest.raises(ValueError, match="epochs"):
        FitOptions(epochs=0)
    with pytest.raises(ValueError, match="mode"):
        FitOptions(epochs=1, mode="best")


# --- the one batch iterator ---------------------------------------------------------------------
def test_batches_cover_every_row_once_per_epoch_and_reshuffle():
    x, y = torch.arange(10.0)[:, None], torch.arange(10)
    batches = Batches(x, y, 4, shuffle=True, seed=0)
    assert len(batches) == 3
    epochs = [[int(v) for _, t in batches for v in t] for _ in range(2)]
    assert sorted(epochs[0]) == list(range(10)) and epochs[0] != epochs[1]
    assert [len(t) for _, t in Batches(x, y, 4, drop_last=True)] == [4, 4]
    auto = next(iter(Batches(x, None, 3)))
    assert torch.equal(auto[0], auto[1])                  # an autoencoder's (x, x)
    with pytest.raises(ValueError, match="length"):
        Batches(x, y[:5], 4)


def test_augment_crop_flip_and_dihedral_keep_the_pixels():
    g = torch.Generator().manual_seed(0)
    x = torch.arange(2 * 3 * 8 * 8, dtype=torch.float32).reshape(2, 3, 8, 8)
    flipped = augment(x, ("flip",), g)
    assert all(torch.equal(f, o) or torch.equal(f, o.flip(-1)) for f, o in zip(flipped, x))
    turned = augment(x, ("dihedral",), g)
    assert sorted(turned.flatten().tolist()) == sorted(x.flatten().tolist())
    cropped = augment(x, ("crop",), g, pad=2)
    assert cropped.shape == x.shape and set(cropped.unique().tolist()) <= set(x.unique().tolist()) | {0.0}
