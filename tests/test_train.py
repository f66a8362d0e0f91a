"""The shared training loop: learns, stops early, checkpoints, restores the best, repeats exactly."""
import pytest
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from cvtasks.train import accuracy, evaluate, fit, load_checkpoint


def _blobs(n=256, seed=0):
    g = torch.Generator().manual_seed(seed)
    y = torch.randint(0, 3, (n,), generator=g)
    centres = torch.tensor([[2.0, 0.0], [-2.0, 0.0], [0.0, 2.5]])
    x = centres[y] + 0.6 * torch.randn(n, 2, generator=g)
    return TensorDataset(x, y)


def _setup(seed=0, lr=0.05):
    torch.manual_seed(seed)
    model = nn.Sequential(nn.Linear(2, 16), nn.ReLU(), nn.Linear(16, 3))
    return model, torch.optim.Adam(model.parameters(), lr=lr)


def test_fit_learns_and_records_history(tmp_path):
    model, opt = _setup()
    train = DataLoader(_blobs(), batch_size=32, shuffle=True)
    val = DataLoader(_blobs(seed=1), batch_size=64)
    before = evaluate(model, val, nn.functional.cross_entropy, {"acc": accuracy})["val/acc"]
    hist = fit(model, train, val, epochs=8, optimizer=opt, loss_fn=nn.functional.cross_entropy,
               metrics={"acc": accuracy}, monitor="val/acc", mode="max", seed=0, progress=False,
               checkpoint=tmp_path / "best.pt", train_metrics=True)
    assert [row["epoch"] for row in hist.epochs] == list(range(1, 9))
    assert {"train/loss", "train/acc", "val/loss", "val/acc", "lr", "seconds"} <= set(hist.epochs[0])
    after = evaluate(model, val, nn.functional.cross_entropy, {"acc": accuracy})["val/acc"]
    assert before < 0.6 < 0.9 < after
    assert after == pytest.approx(hist.best_score)  # the best weights are the ones kept
    meta = load_checkpoint(tmp_path / "best.pt", _setup()[0])
    assert meta["epoch"] == hist.best_epoch and meta["monitor"] == "val/acc"
    assert hist.frame().shape[0] == 8


def test_early_stopping_stops_after_patience():
    model, opt = _setup(lr=0.0)  # nothing changes: the first epoch stays the best
    train = DataLoader(_blobs(64), batch_size=32)
    hist = fit(model, train, DataLoader(_blobs(64, 1), batch_size=64), epochs=20, optimizer=opt,
               loss_fn=nn.functional.cross_entropy, patience=3, progress=False, min_delta=1e-6)
    assert hist.stopped_early and len(hist.epochs) == 4 and hist.best_epoch == 1


def test_same_seed_same_result():
    losses = []
    for _ in range(2):
        model, opt = _setup()
        hist = fit(model, DataLoader(_blobs(), batch_size=16, shuffle=True), epochs=2,
                   optimizer=opt, loss_fn=nn.functional.cross_entropy, seed=7, progress=False)
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
    loader = DataLoader(TensorDataset(x1, x2, y), batch_size=16, collate_fn=lambda b: (
        (torch.stack([r[0] for r in b]), torch.stack([r[1] for r in b])), torch.stack([r[2] for r in b])))
    model = Pair()
    hist = fit(model, loader, epochs=30, optimizer=torch.optim.Adam(model.parameters(), 0.05),
               loss_fn=nn.functional.mse_loss, progress=False, seed=0)
    assert hist.monitor == "train/loss"
    assert hist.series("train/loss")[-1] < 0.1 * hist.series("train/loss")[0]


def test_diverging_loss_is_reported():
    model, _ = _setup()
    opt = torch.optim.SGD(model.parameters(), lr=1e30)
    with pytest.raises(FloatingPointError, match="learning rate"):
        fit(model, DataLoader(_blobs(), batch_size=32), epochs=3, optimizer=opt,
            loss_fn=nn.functional.cross_entropy, progress=False)


@pytest.mark.gpu
def test_fit_uses_cuda_when_present():
    model, opt = _setup()
    fit(model, DataLoader(_blobs(), batch_size=32), epochs=1, optimizer=opt,
        loss_fn=nn.functional.cross_entropy, progress=False)
    assert next(model.parameters()).device.type == "cuda"


def test_per_batch_scheduler_steps_every_batch_and_per_epoch_only_once():
    for per_batch, expected in ((True, 2 * 8), (False, 2)):
        model, opt = _setup()
        sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda step: 1.0)
        fit(model, DataLoader(_blobs(256), batch_size=32), epochs=2, optimizer=opt, scheduler=sched,
            scheduler_per_batch=per_batch, loss_fn=nn.functional.cross_entropy, progress=False)
        assert sched.last_epoch == expected


def test_bfloat16_autocast_trains_and_keeps_float32_weights():
    model, opt = _setup()
    val = DataLoader(_blobs(seed=1), batch_size=64)
    hist = fit(model, DataLoader(_blobs(), batch_size=32, shuffle=True), val, epochs=6, optimizer=opt,
               loss_fn=nn.functional.cross_entropy, metrics={"acc": accuracy}, monitor="val/acc", mode="max",
               seed=0, progress=False, autocast=torch.bfloat16)
    assert hist.best_score > 0.9
    assert all(p.dtype == torch.float32 for p in model.parameters())


def test_autocast_dtype_never_claims_bf16_without_the_hardware(monkeypatch):
    from cvtasks import train

    monkeypatch.setattr(train, "_cpu_has_amx", lambda: False)
    assert train.autocast_dtype("cpu") is None
    monkeypatch.setattr(train, "_cpu_has_amx", lambda: True)
    assert train.autocast_dtype("cpu") == (torch.bfloat16 if torch.backends.mkldnn.is_available() else None)
