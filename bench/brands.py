"""Speed of the brands task's expensive steps: rendering, the backbone pass, fine-tuning, the small CNN.

Prints wall-clock and CPU seconds per image (CPU time is the fairer figure on a shared machine)
and extrapolates to the full configuration. Usage: .venv/bin/python bench/brands.py [n_images]
"""
from __future__ import annotations

import resource
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch  # noqa: E402

import config  # noqa: E402
from cvtasks import brands  # noqa: E402
from cvtasks.data import chandeliers  # noqa: E402
from cvtasks.models import create_image_encoder  # noqa: E402


def cpu_seconds() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def timed(label: str, n: int, scale: int, fn) -> None:
    wall, cpu = time.perf_counter(), cpu_seconds()
    fn()
    wall, cpu = time.perf_counter() - wall, cpu_seconds() - cpu
    print(f"{label:<34} {1000 * wall / n:8.1f} ms/img wall {1000 * cpu / n:8.1f} ms/img cpu"
          f"   x{scale}: {wall * scale / n:6.1f} s wall, {cpu * scale / n:6.1f} s cpu")


def main(n: int = 64) -> None:
    cfg = config.get("brands", quick=False)
    full = cfg.n_images
    train = int(full * (1 - cfg.test_fraction - cfg.val_fraction))
    timed("render (224 px)", n, full, lambda: chandeliers.generate(n, cfg.image_size, seed=1))
    images = chandeliers.generate(n, cfg.image_size, seed=1)["images"]
    encoder = create_image_encoder(cfg.encoder)
    trunk, tail = brands.split_backbone(encoder.backbone, cfg.finetune_blocks)
    x = brands.to_tensor(images, encoder.preprocessing.mean, encoder.preprocessing.std)
    with torch.no_grad():
        timed("backbone pass", n, full, lambda: tail(trunk(x)))
        acts = trunk(x)
    model = brands.FineTuned(tail, brands.BrandHead(encoder.embed_dim, cfg.hidden_dim, 9, cfg.dropout))
    cnn = brands.SmallCNN(9)
    small = brands.to_tensor(brands.downscale(images, cfg.cnn_size), (0.5,) * 3, (0.25,) * 3)
    y = torch.zeros(n, dtype=torch.long)

    def train_step(net, inputs):
        opt = torch.optim.AdamW(net.parameters())
        net.train()
        for s in range(0, n, 32):
            loss = torch.nn.functional.cross_entropy(net(inputs[s:s + 32]), y[s:s + 32])
            opt.zero_grad()
            loss.backward()
            opt.step()
    timed(f"fine-tune step ({cfg.finetune_epochs} epochs)", n, train * cfg.finetune_epochs,
          lambda: train_step(model, acts))
    timed(f"small CNN step ({cfg.cnn_epochs} epochs)", n, train * cfg.cnn_epochs, lambda: train_step(cnn, small))
    print(f"torch threads: {torch.get_num_threads()}; shared machines inflate wall time, not CPU time")


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 64)
