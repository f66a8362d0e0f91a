"""Probe: fine-tune the top of efficientnet_lite0 as a bi-encoder on the vote targets.

    python bench/search_finetune.py [first trained block, default 5] [epochs, default 8]

The image encoder's blocks from the given one on (plus its head) and a linear text projection
are trained so that sigmoid(scale * cosine + bias) regresses the experts' target on the train
pairs (the frozen lower blocks' maps are computed once). Prints validation R2 per epoch and the
test R2 at the best validation epoch. A probe of whether fine-tuning moves R2, not a model the
study keeps (docs/search.md). About 3 minutes (block 5) to 5 minutes (block 4) on the 2-core CPU.
"""
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

warnings.filterwarnings("ignore", category=UserWarning)
torch.manual_seed(0); np.random.seed(0)
cfg = config.get("search")
data, feats, split = search.prepare(cfg)
pairs = data.pairs
y = search.expert_target(pairs[search.EXPERTS].to_numpy()).astype(np.float32)
enc = search.image_encoder(cfg.image_encoder)
net = enc.backbone.eval()
CUT = int(sys.argv[1]) if len(sys.argv) > 1 else 5     # blocks >= CUT are trained
tf = enc.preprocessing.transform()
def stem_feats(folder, names):
    out = []
    with torch.no_grad():
        for s in range(0, len(names), 64):
            x = torch.stack([tf(load_image(folder / n)) for n in names[s:s + 64]])
            h = net.bn1(net.conv_stem(x))
            for b in net.blocks[:CUT]: h = b(h)
            out.append(h)
    return torch.cat(out)
t = time.time()
H = stem_feats(data.root / "train_images", data.train_images)
print("cached", tuple(H.shape), round(time.time() - t), "s", flush=True)
class Top(nn.Module):
    def __init__(self):
        super().__init__()
        import copy
        self.blocks = copy.deepcopy(net.blocks[CUT:]); self.head = copy.deepcopy(net.conv_head); self.bn2 = copy.deepcopy(net.bn2)
        self.proj = nn.Linear(1280, 256); self.drop = nn.Dropout(0.2)
    def forward(self, h):
        for b in self.blocks: h = b(h)
        h = F.relu6(self.bn2(self.head(h))).mean((2, 3))
        return F.normalize(self.proj(self.drop(h)), dim=-1)
top = Top()
tproj = nn.Sequential(nn.Dropout(0.2), nn.Linear(feats.queries.shape[1], 256))
scale = nn.Parameter(torch.tensor(5.0)); bias = nn.Parameter(torch.tensor(-2.0))
opt = torch.optim.AdamW([{"params": list(top.blocks.parameters()) + list(top.head.parameters()) + list(top.bn2.parameters()), "lr": 1e-4},
                         {"params": list(top.proj.parameters()) + list(tproj.parameters()) + [scale, bias], "lr": 1e-3}], weight_decay=1e-2)
Q = torch.from_numpy(feats.queries).float()
tr, va, te = split["train"], split["val"], split["test"]
pi, pq = feats.pair_image, feats.pair_query
def predict(rows):
    top.eval(); tproj.eval()
    with torch.no_grad():
        imgs = np.unique(pi[rows]); E = torch.zeros(len(feats.train_images), 256)
        for s in range(0, len(imgs), 128): E[imgs[s:s + 128]] = top(H[imgs[s:s + 128]])
        T = F.normalize(tproj(Q), dim=-1)
        return torch.sigmoid(scale * (E[pi[rows]] * T[pq[rows]]).sum(1) + bias).numpy()
EPOCHS = int(sys.argv[2]) if len(sys.argv) > 2 else 8
best = -9
for ep in range(EPOCHS):
    top.train(); tproj.train(); t = time.time()
    # batches of images: every training pair of those images
    imgs = np.random.permutation(np.unique(pi[tr]))
    for s in range(0, len(imgs), 48):
        bi = imgs[s:s + 48]
        rows = tr[np.isin(pi[tr], bi)]
        E = top(H[bi]); loc = {g: k for k, g in enumerate(bi)}
        T = F.normalize(tproj(Q[pq[rows]]), dim=-1)
        e = E[[loc[g] for g in pi[rows]]]
        pred = torch.sigmoid(scale * (e * T).sum(1) + bias)
        loss = F.mse_loss(pred, torch.from_numpy(y[rows]))
        opt.zero_grad(); loss.backward(); opt.step()
    r2v = r2_score(y[va], predict(va))
    print(f"epoch {ep} {time.time() - t:.0f}s loss {loss.item():.4f} val R2 {r2v:.3f}", flush=True)
    if r2v > best: best = r2v; best_te = r2_score(y[te], predict(te))
print("best val R2", round(best, 3), "its test R2", round(best_te, 3))
