"""Probe: fine-tune the top of efficientnet_lite0 as a bi-encoder on the vote targets.

    python bench/search_finetune.py [first trained block, default 5] [epochs, default 8]

The image encoder's blocks from the given one on (plus its head) and a linear text projection
are trained so that sigmoid(scale * cosine + bias) regresses the experts' target on the train
pairs (the frozen lower blocks' maps are computed once). Prints validation R2 per epoch and the
test R2 at the best validation epoch. A probe of whether fine-tuning moves R2, not a model the
study keeps (docs/search.md). About 3 minutes (block 5) to 5 minutes (block 4) on the 2-core CPU.

The loop is written here rather than with cvtasks.train.fit because a batch is a set of
*images* with all their training pairs: each image goes through the trainable blocks once per
step, however many queries it is paired with.
"""
from __future__ import annotations

import copy
import os
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import torch
from sklearn.metrics import r2_score
from torch import nn
from torch.nn import functional as F

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.setdefault("CVTASKS_WANDB", "disabled")

import config  # noqa: E402
from cvtasks import search  # noqa: E402
from cvtasks.data.course_search import load_image  # noqa: E402

DIM = 256            # shared space of the two sides
IMAGES_PER_STEP = 48


@torch.no_grad()
def frozen_maps(net: nn.Module, transform, paths: list[Path], first_trained: int) -> torch.Tensor:
    """Feature maps of every image after the stem and the frozen blocks (computed once)."""
    out = []
    for start in range(0, len(paths), 64):
        h = net.bn1(net.conv_stem(torch.stack([transform(load_image(p)) for p in paths[start:start + 64]])))
        for block in net.blocks[:first_trained]:
            h = block(h)
        out.append(h)
    return torch.cat(out)


class ImageTop(nn.Module):
    """A trainable copy of the encoder's upper blocks and head, projected to the shared space."""

    def __init__(self, net: nn.Module, first_trained: int):
        super().__init__()
        self.blocks = copy.deepcopy(net.blocks[first_trained:])
        self.head = copy.deepcopy(net.conv_head)
        self.bn2 = copy.deepcopy(net.bn2)
        self.proj = nn.Linear(net.conv_head.out_channels, DIM)
        self.drop = nn.Dropout(0.2)

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        for block in self.blocks:
            h = block(h)
        h = F.relu6(self.bn2(self.head(h))).mean((2, 3))
        return F.normalize(self.proj(self.drop(h)), dim=-1)


def main() -> None:
    first_trained = int(sys.argv[1]) if len(sys.argv) > 1 else 5
    epochs = int(sys.argv[2]) if len(sys.argv) > 2 else 8
    warnings.filterwarnings("ignore", category=UserWarning)
    torch.manual_seed(0)
    np.random.seed(0)
    cfg = config.get("search")
    data, feats, split = search.prepare(cfg)
    y = search.expert_target(data.pairs[search.EXPERTS].to_numpy()).astype(np.float32)
    encoder = search.image_encoder(cfg.image_encoder)
    net = encoder.backbone.eval()
    start = time.time()
    maps = frozen_maps(net, encoder.preprocessing.transform(), [data.root / "train_images" / n for n in data.train_images],
                       first_trained)
    print(f"frozen maps {tuple(maps.shape)} in {time.time() - start:.0f} s", flush=True)

    image_top = ImageTop(net, first_trained)
    text_proj = nn.Sequential(nn.Dropout(0.2), nn.Linear(feats.queries.shape[1], DIM))
    scale, bias = nn.Parameter(torch.tensor(5.0)), nn.Parameter(torch.tensor(-2.0))
    pretrained = [*image_top.blocks.parameters(), *image_top.head.parameters(), *image_top.bn2.parameters()]
    new = [*image_top.proj.parameters(), *text_proj.parameters(), scale, bias]
    optimizer = torch.optim.AdamW([{"params": pretrained, "lr": 1e-4}, {"params": new, "lr": 1e-3}], weight_decay=1e-2)
    queries = torch.from_numpy(feats.queries).float()
    train, val, test = split["train"], split["val"], split["test"]
    pair_image, pair_query = feats.pair_image, feats.pair_query

    @torch.no_grad()
    def predict(rows: np.ndarray) -> np.ndarray:
        image_top.eval()
        text_proj.eval()
        images = np.unique(pair_image[rows])
        emb = torch.zeros(len(feats.train_images), DIM)
        for s in range(0, len(images), 128):
            emb[images[s:s + 128]] = image_top(maps[images[s:s + 128]])
        txt = F.normalize(text_proj(queries), dim=-1)
        return torch.sigmoid(scale * (emb[pair_image[rows]] * txt[pair_query[rows]]).sum(1) + bias).numpy()

    best_val, best_test = -np.inf, np.nan
    for epoch in range(epochs):
        image_top.train()
        text_proj.train()
        start = time.time()
        order = np.random.permutation(np.unique(pair_image[train]))
        for s in range(0, len(order), IMAGES_PER_STEP):
            images = order[s:s + IMAGES_PER_STEP]
            rows = train[np.isin(pair_image[train], images)]
            emb = image_top(maps[images])
            slot = {image: k for k, image in enumerate(images)}
            txt = F.normalize(text_proj(queries[pair_query[rows]]), dim=-1)
            pred = torch.sigmoid(scale * (emb[[slot[i] for i in pair_image[rows]]] * txt).sum(1) + bias)
            loss = F.mse_loss(pred, torch.from_numpy(y[rows]))
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
        val_r2 = r2_score(y[val], predict(val))
        print(f"epoch {epoch} {time.time() - start:.0f}s loss {loss.item():.4f} val R2 {val_r2:.3f}", flush=True)
        if val_r2 > best_val:
            best_val, best_test = val_r2, r2_score(y[test], predict(test))
    print(f"best val R2 {best_val:.3f}, its test R2 {best_test:.3f}")


if __name__ == "__main__":
    main()
