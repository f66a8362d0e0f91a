"""Chandelier brand classification: baselines, transfer learning, a small CNN, embeddings.

The steps, each a function the notebook calls and ``run(cfg)`` chains:

1. ``load_data``: the generated chandeliers (or a user's photo folder), split by product model.
2. ``color_histogram_baseline``: RGB histogram + logistic regression, the "is colour enough?" check.
3. ``backbone_features``: one pass of the pretrained backbone over every image, cached. It keeps
   the pooled penultimate embedding (for the frozen head) and the activations entering the last
   ``finetune_blocks`` blocks (for fine-tuning). Fine-tuning then trains only those blocks and
   the head on the cached activations: the frozen part is the same for every epoch, so running
   it once instead of every epoch saves most of the CPU time. The price: no image augmentation
   while fine-tuning (the cached activations are of the unaugmented images).
4. ``train_head`` (our head on frozen embeddings), ``finetune`` (the last blocks + head),
   ``train_small_cnn`` (from scratch on downscaled images).
5. ``imbalance_experiment``: the head with and without class weights.
6. ``evaluate`` and ``embedding_report``: metrics per split, penultimate-layer embeddings,
   silhouette before/after training, UMAP, TensorBoard projector.
Active-learning labelling lives in cvtasks.active_learning.
"""
from __future__ import annotations

import copy
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import f1_score, silhouette_score
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

import config
from cvtasks import active_learning as al
from cvtasks.cache import cached_arrays, fingerprint
from cvtasks.data import chandeliers
from cvtasks.data.folder import scan_image_folder
from cvtasks.metrics import classification_metrics, per_class_table
from cvtasks.runtime import one_thread, pick_device, seed_everything
from cvtasks.train import History, fit, predict

FEATURES_VERSION = 1




# --- data ----------------------------------------------------------------------------------------
@dataclass
class BrandData:
    """Images (n, s, s, 3) uint8 with brand labels, product-model groups and the split."""

    images: np.ndarray
    labels: np.ndarray
    groups: np.ndarray
    classes: list[str]
    split: np.ndarray          # 'train' / 'val' / 'test' per image
    key: dict[str, Any]        # what made the data: the cache key of everything derived from it
    skipped: list[tuple[Path, str]] = field(default_factory=list)

    def idx(self, name: str) -> np.ndarray:
        return np.flatnonzero(self.split == name)

    def counts(self) -> pd.DataFrame:
        """Images and product models per brand and split."""
        frame = pd.DataFrame({"brand": np.array(self.classes)[self.labels], "split": self.split,
                              "model": self.groups})
        table = frame.pivot_table(index="brand", columns="split", values="model", aggfunc="count", fill_value=0)
        table["models"] = frame.groupby("brand")["model"].nunique()
        table["total"] = frame.groupby("brand").size()
        return table.loc[self.classes].sort_values("total", ascending=False)


def load_data(cfg: config.BrandsConfig) -> BrandData:
    """The generated chandeliers, or ``cfg.photos_dir`` when ``cfg.source == 'photos'``."""
    if cfg.source == "photos":
        return load_photos(cfg.photos_dir, cfg.image_size, cfg.test_fraction, cfg.val_fraction, cfg.seed)
    data = chandeliers.load_chandeliers(cfg.n_images, cfg.image_size, cfg.seed)
    split = chandeliers.split_by_model(data["labels"], data["models"], cfg.test_fraction, cfg.val_fraction, cfg.seed)
    key = {"source": "generator", "version": chandeliers.GENERATOR_VERSION, "n_images": cfg.n_images,
           "image_size": cfg.image_size, "seed": cfg.seed}
    return BrandData(data["images"], data["labels"], data["models"], list(chandeliers.BRAND_NAMES), split, key)


def load_photos(root: Path, image_size: int, test_fraction: float, val_fraction: float, seed: int) -> BrandData:
    """A folder ``<brand>/*.jpg`` or ``<brand>/<model>/*.jpg``; unreadable files are skipped.

    Photos in a model subfolder form one group (they never straddle train and test); a photo
    directly in a brand folder is its own group.
    """
    folder = scan_image_folder(root)
    if len(folder) == 0:
        raise FileNotFoundError(f"{root}: no readable images ({folder.summary()})")
    groups = np.array([str(p.parent.relative_to(root)) if p.parent.parent != root else str(p.relative_to(root))
                       for p in folder.paths])
    _, group_ids = np.unique(groups, return_inverse=True)
    images = np.stack([np.asarray(folder.load(i, image_size)) for i in range(len(folder))])
    labels = np.array(folder.labels)
    split = chandeliers.split_by_model(labels, group_ids, test_fraction, val_fraction, seed)
    stat = [(str(p.relative_to(root)), p.stat().st_size, p.stat().st_mtime_ns) for p in folder.paths]
    key = {"source": "photos", "root": str(root), "files": fingerprint(stat), "image_size": image_size}
    return BrandData(images, labels, group_ids, folder.classes, split, key, folder.skipped)


def sample_grid(data: BrandData, per_brand: int = 6, seed: int = 0):
    """A figure: ``per_brand`` photos of each brand, one row per brand."""
    from cvtasks.plots import image_grid

    rng = np.random.default_rng(seed)
    images, titles = [], []
    for b, name in enumerate(data.classes):
        idx = np.flatnonzero(data.labels == b)
        for i in rng.choice(idx, size=min(per_brand, len(idx)), replace=False):
            images.append(data.images[i])
            titles.append(name)
        for _ in range(per_brand - min(per_brand, len(idx))):
            images.append(np.full_like(data.images[0], 255))
            titles.append("")
    return image_grid(images, titles, ncols=per_brand, size=1.25)


# --- the colour baseline -------------------------------------------------------------------------
def color_histograms(images: np.ndarray, bins: int) -> np.ndarray:
    """Joint RGB histograms (bins^3 per image), normalised to sum 1."""
    q = (images.reshape(len(images), -1, 3).astype(np.int32) * bins) // 256
    codes = (q[..., 0] * bins + q[..., 1]) * bins + q[..., 2]
    hist = np.stack([np.bincount(c, minlength=bins ** 3) for c in codes]).astype(np.float32)
    return hist / hist.sum(1, keepdims=True)


def color_histogram_baseline(data: BrandData, bins: int, seed: int) -> dict[str, Any]:
    """Logistic regression on colour histograms; test metrics and the fitted model."""
    hist = np.sqrt(color_histograms(data.images, bins))   # Hellinger: tames the dominant bins
    tr, te = data.idx("train"), data.idx("test")
    model = make_pipeline(StandardScaler(), LogisticRegression(C=0.1, max_iter=2000, class_weight="balanced",
                                                               random_state=seed))
    with one_thread():
        model.fit(hist[tr], data.labels[tr])
    probs = np.zeros((len(te), len(data.classes)))
    probs[:, model.classes_] = model.predict_proba(hist[te])
    return {"metrics": classification_metrics(data.labels[te], probs, prefix="baseline"), "model": model}


# --- the backbone, split into a frozen trunk and a trainable tail --------------------------------
def split_backbone(backbone: nn.Module, tail_blocks: int) -> tuple[nn.Module, nn.Module]:
    """(trunk, tail): the trunk runs once and is cached; the tail is what fine-tuning trains.

    The tail is the last ``tail_blocks`` residual blocks plus the final convolution and
    pooling, and returns the pooled penultimate features. EfficientNets (timm ``blocks``) and
    ResNets (timm ``layer4``) are supported.
    """
    if hasattr(backbone, "blocks"):
        blocks = [b for stage in backbone.blocks for b in stage]
        head = [backbone.conv_head, backbone.bn2]
        stem = [backbone.conv_stem, backbone.bn1]
    elif hasattr(backbone, "layer4"):
        blocks = [b for layer in (backbone.layer1, backbone.layer2, backbone.layer3, backbone.layer4) for b in layer]
        head = []
        stem = [backbone.conv1, backbone.bn1, backbone.act1, backbone.maxpool]
    else:
        raise ValueError(f"cannot split {type(backbone).__name__}: expected a timm EfficientNet or ResNet")
    if not 1 <= tail_blocks < len(blocks):
        raise ValueError(f"tail_blocks = {tail_blocks}: must lie between 1 and {len(blocks) - 1}")
    trunk = nn.Sequential(*stem, *blocks[:-tail_blocks])
    tail = nn.Sequential(*blocks[-tail_blocks:], *head, backbone.global_pool)
    return trunk, tail


def to_tensor(images: np.ndarray, mean, std) -> torch.Tensor:
    """uint8 (n, h, w, 3) to a normalised float tensor (n, 3, h, w)."""
    x = torch.from_numpy(np.ascontiguousarray(images)).permute(0, 3, 1, 2).float().div_(255)
    return (x - torch.tensor(mean).view(1, 3, 1, 1)) / torch.tensor(std).view(1, 3, 1, 1)


def backbone_features(encoder, data: BrandData, tail_blocks: int, *, batch_size: int = 64,
                      device=None, progress: bool = False) -> dict[str, np.ndarray]:
    """``embeddings`` (n, d): pooled penultimate features; ``activations``: what enters the tail.

    Images go in at their own size (the generator frames its photos; no resize or crop), with
    the encoder's normalisation. Cached by encoder, data and split point.
    """
    device = pick_device(device)
    key = {"encoder": encoder.name, "data": data.key, "tail_blocks": tail_blocks,
           "norm": [encoder.preprocessing.mean, encoder.preprocessing.std], "version": FEATURES_VERSION}

    @torch.no_grad()
    def compute():
        trunk, tail = split_backbone(encoder.backbone, tail_blocks)
        trunk.eval().to(device), tail.eval().to(device)
        acts, embs = [], []
        for start in range(0, len(data.images), batch_size):
            x = to_tensor(data.images[start:start + batch_size], encoder.preprocessing.mean,
                          encoder.preprocessing.std).to(device)
            a = trunk(x)
            acts.append(a.half().cpu().numpy())     # half precision: half the cache, ample for features
            embs.append(tail(a).float().cpu().numpy())
            if progress:
                print(f"\rbackbone {min(start + batch_size, len(data.images))}/{len(data.images)}", end="")
        return {"activations": np.concatenate(acts), "embeddings": np.concatenate(embs)}

    return cached_arrays("brands-features", key, compute)


# --- models --------------------------------------------------------------------------------------
class BrandHead(nn.Module):
    """Our head: a hidden Linear layer (the embedding we plot), dropout, the classifier."""

    def __init__(self, in_dim: int, hidden_dim: int, n_classes: int, dropout: float):
        super().__init__()
        self.hidden = nn.Sequential(nn.Linear(in_dim, hidden_dim), nn.ReLU())
        self.dropout = nn.Dropout(dropout)
        self.classifier = nn.Linear(hidden_dim, n_classes)

    def embed(self, x: torch.Tensor) -> torch.Tensor:
        return self.hidden(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.dropout(self.hidden(x)))


class FineTuned(nn.Module):
    """The backbone's tail (trainable) followed by our head, fed with cached trunk activations."""

    def __init__(self, tail: nn.Module, head: BrandHead):
        super().__init__()
        self.tail, self.head = tail, head

    def embed(self, x: torch.Tensor) -> torch.Tensor:
        return self.head.embed(self.tail(x))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.tail(x))


class SmallCNN(nn.Module):
    """Four conv blocks (conv, batch norm, ReLU, pooling), global pooling, dropout, a classifier."""

    def __init__(self, n_classes: int, widths=(16, 32, 64, 128), dropout: float = 0.3):
        super().__init__()
        layers, c_in = [], 3
        for c in widths:
            layers += [nn.Conv2d(c_in, c, 3, padding=1, bias=False), nn.BatchNorm2d(c), nn.ReLU(inplace=True),
                       nn.MaxPool2d(2)]
            c_in = c
        self.features = nn.Sequential(*layers, nn.AdaptiveAvgPool2d(1), nn.Flatten())
        self.classifier = nn.Sequential(nn.Dropout(dropout), nn.Linear(c_in, n_classes))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.features(x))


def class_weights(labels: np.ndarray, n_classes: int) -> torch.Tensor:
    """'Balanced' weights n / (k * count): each class weighs the same in the loss in total."""
    counts = np.bincount(labels, minlength=n_classes).astype(np.float64)
    return torch.tensor(len(labels) / (n_classes * np.maximum(counts, 1)), dtype=torch.float32)


def macro_f1(outputs: torch.Tensor, targets: torch.Tensor) -> float:
    return float(f1_score(targets.numpy(), outputs.argmax(1).numpy(), average="macro", zero_division=0))


def _accuracy(outputs: torch.Tensor, targets: torch.Tensor) -> float:
    return float((outputs.argmax(1) == targets).float().mean())


METRICS = {"acc": _accuracy, "macro_f1": macro_f1}


def _loader(x: np.ndarray | torch.Tensor, y: np.ndarray, batch_size: int, shuffle: bool, seed: int) -> DataLoader:
    x = torch.as_tensor(x, dtype=torch.float32) if not torch.is_tensor(x) else x
    gen = torch.Generator().manual_seed(seed)
    return DataLoader(TensorDataset(x, torch.as_tensor(y, dtype=torch.long)), batch_size=batch_size,
                      shuffle=shuffle, generator=gen)


@dataclass
class Trained:
    """A trained model, its history and the time it took."""

    name: str
    model: nn.Module
    history: History
    seconds: float


def train_head(embeddings: np.ndarray, data: BrandData, *, hidden_dim: int, dropout: float, lr: float,
               batch_size: int, epochs: int, patience: int, weighted: bool = True, seed: int = 0,
               device=None, name: str = "head") -> Trained:
    """Our head on frozen backbone embeddings, early-stopped on validation macro-F1."""
    seed_everything(seed)
    n_classes = len(data.classes)
    tr, va = data.idx("train"), data.idx("val")
    head = BrandHead(embeddings.shape[1], hidden_dim, n_classes, dropout)
    weight = class_weights(data.labels[tr], n_classes) if weighted else None
    start = time.perf_counter()
    with one_thread():
        history = fit(head, _loader(embeddings[tr], data.labels[tr], batch_size, True, seed),
                      _loader(embeddings[va], data.labels[va], 256, False, seed), epochs=epochs,
                      optimizer=torch.optim.AdamW(head.parameters(), lr=lr, weight_decay=1e-3),
                      loss_fn=nn.CrossEntropyLoss(weight=weight), metrics=METRICS, monitor="val/macro_f1",
                      mode="max", patience=patience, device=device, seed=seed, progress=False, train_metrics=True)
    return Trained(name, head, history, time.perf_counter() - start)


def finetune(encoder, head: BrandHead, activations: np.ndarray, data: BrandData, *, tail_blocks: int,
             lr: float, head_lr: float, batch_size: int, epochs: int, seed: int = 0, device=None) -> Trained:
    """The backbone's last blocks and a copy of the trained head, trained on cached activations.

    Starting from the trained head (rather than a random one) keeps the first updates from
    wrecking the pretrained blocks; the blocks get a lower learning rate than the head.
    """
    seed_everything(seed)
    n_classes = len(data.classes)
    _, tail = split_backbone(copy.deepcopy(encoder.backbone), tail_blocks)
    model = FineTuned(tail, copy.deepcopy(head))
    tr, va = data.idx("train"), data.idx("val")
    acts = torch.from_numpy(activations)      # half precision in the cache; float per batch
    optimizer = torch.optim.AdamW([{"params": model.tail.parameters(), "lr": lr},
                                   {"params": model.head.parameters(), "lr": head_lr}], weight_decay=1e-3)
    start = time.perf_counter()
    history = fit(model, _HalfLoader(acts[tr], data.labels[tr], batch_size, True, seed),
                  _HalfLoader(acts[va], data.labels[va], 128, False, seed), epochs=epochs, optimizer=optimizer,
                  loss_fn=nn.CrossEntropyLoss(weight=class_weights(data.labels[tr], n_classes)), metrics=METRICS,
                  monitor="val/macro_f1", mode="max", device=device, seed=seed, progress=False, train_metrics=True)
    return Trained("finetuned", model, history, time.perf_counter() - start)


class _HalfLoader:
    """Batches of half-precision cached activations, cast to float32 one batch at a time."""

    def __init__(self, x: torch.Tensor, y: np.ndarray, batch_size: int, shuffle: bool, seed: int):
        self.x, self.y = x, torch.as_tensor(y, dtype=torch.long)
        self.batch_size, self.shuffle = batch_size, shuffle
        self.gen = torch.Generator().manual_seed(seed)

    def __len__(self) -> int:
        return -(-len(self.y) // self.batch_size)

    def __iter__(self):
        order = torch.randperm(len(self.y), generator=self.gen) if self.shuffle else torch.arange(len(self.y))
        for start in range(0, len(order), self.batch_size):
            i = order[start:start + self.batch_size]
            yield self.x[i].float(), self.y[i]


def downscale(images: np.ndarray, size: int) -> np.ndarray:
    """Images resized to ``size`` x ``size`` (area averaging)."""
    from PIL import Image

    if images.shape[1] == size:
        return images
    return np.stack([np.asarray(Image.fromarray(im).resize((size, size), Image.BOX)) for im in images])


class _Augmented(torch.utils.data.Dataset):
    """Random horizontal flips and small shifts: the small CNN sees each image a little differently."""

    def __init__(self, x: torch.Tensor, y: np.ndarray, seed: int, shift: int = 4):
        self.x, self.y, self.shift = x, torch.as_tensor(y, dtype=torch.long), shift
        self.gen = torch.Generator().manual_seed(seed)

    def __len__(self) -> int:
        return len(self.y)

    def __getitem__(self, i):
        x = self.x[i]
        if torch.rand(1, generator=self.gen) < 0.5:
            x = x.flip(-1)
        dx, dy = torch.randint(-self.shift, self.shift + 1, (2,), generator=self.gen).tolist()
        return torch.roll(x, shifts=(dy, dx), dims=(1, 2)), self.y[i]


def train_small_cnn(data: BrandData, *, size: int, lr: float, batch_size: int, epochs: int, patience: int,
                    seed: int = 0, device=None) -> Trained:
    """The small CNN from scratch on ``size``-pixel images with flips and shifts, class-weighted."""
    seed_everything(seed)
    n_classes = len(data.classes)
    x = to_tensor(downscale(data.images, size), (0.5, 0.5, 0.5), (0.25, 0.25, 0.25))
    tr, va = data.idx("train"), data.idx("val")
    model = SmallCNN(n_classes)
    train_loader = DataLoader(_Augmented(x[tr], data.labels[tr], seed), batch_size=batch_size, shuffle=True,
                              generator=torch.Generator().manual_seed(seed))
    optimizer = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=1e-3)
    scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=epochs)
    start = time.perf_counter()
    history = fit(model, train_loader, _loader(x[va], data.labels[va], 256, False, seed), epochs=epochs,
                  optimizer=optimizer, loss_fn=nn.CrossEntropyLoss(weight=class_weights(data.labels[tr], n_classes)),
                  metrics=METRICS, monitor="val/macro_f1", mode="max", patience=patience, scheduler=scheduler,
                  device=device, seed=seed, progress=False, train_metrics=True)
    model.cnn_size = size
    return Trained("small_cnn", model, history, time.perf_counter() - start)


def cnn_inputs(data: BrandData, size: int) -> torch.Tensor:
    return to_tensor(downscale(data.images, size), (0.5, 0.5, 0.5), (0.25, 0.25, 0.25))


# --- evaluation ----------------------------------------------------------------------------------
def probabilities(model: nn.Module, x: np.ndarray | torch.Tensor, device=None, batch_size: int = 128) -> np.ndarray:
    """Softmax outputs of ``model`` over inputs ``x`` (embeddings, activations or images)."""
    x = torch.as_tensor(x)
    loader = _HalfLoader(x, np.zeros(len(x)), batch_size, False, 0)
    logits, _ = predict(model, loader, device)
    return torch.softmax(logits, 1).numpy()


def evaluate(probs: np.ndarray, data: BrandData, prefix: str = "") -> dict[str, float]:
    """Accuracy, balanced accuracy, macro-F1, top-3 and the worst class, for every split."""
    out = {}
    for name in ("train", "val", "test"):
        i = data.idx(name)
        if len(i):
            out.update(classification_metrics(data.labels[i], probs[i], prefix=f"{prefix}{name}"))
    return out


def mistakes_gallery(data: BrandData, probs: np.ndarray, split: str = "test", limit: int = 16):
    """The most confident mistakes on ``split``: the photo, the true and the predicted brand."""
    from cvtasks.plots import image_grid

    i = data.idx(split)
    pred = probs[i].argmax(1)
    wrong = i[pred != data.labels[i]]
    order = np.argsort(-probs[wrong].max(1))[:limit]
    wrong = wrong[order]
    titles = [f"{data.classes[data.labels[j]]}\n-> {data.classes[probs[j].argmax()]} {probs[j].max():.2f}"
              for j in wrong]
    if len(wrong) == 0:
        return None
    return image_grid([data.images[j] for j in wrong], titles, ncols=8, size=1.5)


def per_class(probs: np.ndarray, data: BrandData, split: str = "test") -> pd.DataFrame:
    i = data.idx(split)
    return per_class_table(data.labels[i], probs[i].argmax(1), data.classes)


# --- class imbalance -----------------------------------------------------------------------------
def imbalance_experiment(embeddings: np.ndarray, data: BrandData, cfg: config.BrandsConfig, device=None) -> pd.DataFrame:
    """The same head trained with and without class weights: test metrics side by side."""
    rows = {}
    for weighted in (False, True):
        t = train_head(embeddings, data, hidden_dim=cfg.hidden_dim, dropout=cfg.dropout, lr=cfg.lr,
                       batch_size=cfg.batch_size, epochs=cfg.epochs, patience=cfg.patience, weighted=weighted,
                       seed=cfg.seed, device=device)
        i = data.idx("test")
        m = classification_metrics(data.labels[i], probabilities(t.model, embeddings[i], device), prefix="test")
        rows["class weights" if weighted else "plain cross-entropy"] = {k.split("/")[1]: v for k, v in m.items()}
    return pd.DataFrame(rows).T.round(3)


# --- embeddings ----------------------------------------------------------------------------------
@torch.no_grad()
def penultimate(model: nn.Module, x: np.ndarray | torch.Tensor, batch_size: int = 256) -> np.ndarray:
    """The head's hidden-layer output (its penultimate Linear layer, after the ReLU)."""
    model.eval().cpu()
    x = torch.as_tensor(x)
    return np.concatenate([model.embed(x[s:s + batch_size].float()).numpy() for s in range(0, len(x), batch_size)])


def silhouettes(before: np.ndarray, after: np.ndarray, labels: np.ndarray) -> dict[str, float]:
    """Silhouette of the brands in the penultimate layer, before and after training (cosine)."""
    return {"silhouette_before": float(silhouette_score(before, labels, metric="cosine")),
            "silhouette_after": float(silhouette_score(after, labels, metric="cosine"))}


def umap_2d(embeddings: np.ndarray, n_neighbors: int, seed: int) -> np.ndarray:
    import umap

    reducer = umap.UMAP(n_neighbors=min(n_neighbors, len(embeddings) - 1), min_dist=0.2, metric="cosine",
                        random_state=seed, n_jobs=1)
    return reducer.fit_transform(embeddings)


def umap_plot(points: np.ndarray, labels: np.ndarray, classes: list[str], title: str, ax=None):
    import matplotlib.pyplot as plt

    if ax is None:
        _, ax = plt.subplots(figsize=(5.5, 4.5))
    cmap = plt.get_cmap("tab10")
    for b, name in enumerate(classes):
        m = labels == b
        ax.scatter(points[m, 0], points[m, 1], s=8, color=cmap(b % 10), label=name, alpha=0.8)
    ax.set_title(title, fontsize=9)
    ax.set_xticks([]), ax.set_yticks([])
    ax.legend(fontsize=6, markerscale=1.5, loc="best")
    return ax


def export_embeddings(embeddings: np.ndarray, data: BrandData, indices: np.ndarray, sprite_size: int,
                      out_dir: Path | None = None) -> Path:
    """The penultimate embeddings, brand labels and a sprite of thumbnails for TensorBoard."""
    from cvtasks.tracking import export_projector

    labels = [data.classes[b] for b in data.labels[indices]]
    thumbs = downscale(data.images[indices], sprite_size)
    return export_projector(embeddings, labels, out_dir or config.TENSORBOARD_DIR / "brands", images=thumbs,
                            sprite_size=sprite_size)


def embedding_frame(embeddings: np.ndarray, points: np.ndarray, probs: np.ndarray, data: BrandData,
                    indices: np.ndarray) -> pd.DataFrame:
    """A table for W&B: brand, prediction, UMAP position and the embedding of each image."""
    return pd.DataFrame({
        "brand": [data.classes[b] for b in data.labels[indices]],
        "predicted": [data.classes[b] for b in probs.argmax(1)],
        "model": data.groups[indices], "umap_x": points[:, 0], "umap_y": points[:, 1],
        **{f"e{j}": embeddings[:, j] for j in range(embeddings.shape[1])},
    })


# --- active learning on the backbone embeddings --------------------------------------------------
def active_learning(embeddings: np.ndarray, data: BrandData, cfg: config.BrandsConfig) -> dict[str, Any]:
    """Label the training pool with uncertainty sampling vs random; auto-label the rest.

    Pool: the training split (its labels hidden behind the simulated annotator); the curves
    are measured on the test split.
    """
    pool, test = data.idx("train"), data.idx("test")
    px, py, tx, ty = embeddings[pool], data.labels[pool], embeddings[test], data.labels[test]
    kw = dict(initial=cfg.al_initial_labels, batch=cfg.al_batch, rounds=cfg.al_rounds, pca_dims=cfg.al_pca_dims,
              seed=cfg.seed)
    strategies = [cfg.al_strategy] + [s for s in al.STRATEGIES if s != cfg.al_strategy]
    curves = al.compare(px, py, tx, ty, strategies=strategies, random_repeats=cfg.al_random_repeats, **kw)
    full = al.full_label_accuracy(px, py, tx, ty, pca_dims=cfg.al_pca_dims, seed=cfg.seed)
    auto = al.autolabel(curves[cfg.al_strategy][0], px, py, cfg.autolabel_threshold)
    reached = {s: al.labels_to_reach(*al.mean_curve(c), 0.95 * full) for s, c in curves.items()}
    n_main = reached[cfg.al_strategy]
    metrics = {
        "al/pool_size": len(pool), "al/full_accuracy": full,
        # not reached within the budget: count it as the whole pool (what full labelling costs)
        "al/labels_to_95pct": n_main if n_main is not None else len(pool),
        "al/reached_95pct": int(n_main is not None),
        "al/random_labels_to_95pct": reached["random"] if reached["random"] is not None else len(pool),
        "al/labels_budget": curves[cfg.al_strategy][0].n_labels[-1],
        "autolabel/accuracy": auto["accuracy"], "autolabel/coverage": auto["coverage"],
        "autolabel/n_auto": auto["n_auto"], "autolabel/n_rest": auto["n_rest"],
    }
    metrics["al/labels_fraction_of_pool"] = metrics["al/labels_to_95pct"] / len(pool)
    if auto["n_auto"] == 0:   # nothing was sure enough: there is no accuracy to report
        del metrics["autolabel/accuracy"]
    return {"curves": curves, "full_accuracy": full, "reached": reached, "autolabel": auto, "metrics": metrics}


# --- the whole task ------------------------------------------------------------------------------
def data_metrics(data: BrandData) -> dict[str, float]:
    counts = np.bincount(data.labels, minlength=len(data.classes))
    return {"data/n_images": len(data.labels), "data/n_brands": len(data.classes),
            "data/n_models": len(np.unique(data.groups)), "data/skipped_files": len(data.skipped),
            "data/imbalance_ratio": float(counts.max() / max(counts.min(), 1))}


def model_metrics(probs: dict[str, np.ndarray], data: BrandData) -> tuple[dict[str, float], str]:
    """Every model's metrics per split (``<model>/<split>/...``), and the transfer model's as the
    headline (``<split>/...``): frozen or fine-tuned, whichever is better on validation."""
    m = {}
    for name, p in probs.items():
        m.update(evaluate(p, data, prefix=f"{name}/"))
    best = max(("frozen", "finetuned"), key=lambda k: m[f"{k}/val/macro_f1"])
    m["transfer/finetuned_selected"] = int(best == "finetuned")
    m.update(evaluate(probs[best], data))
    return m, best


def comparison(metrics: dict[str, float], models=("frozen", "finetuned", "small_cnn"), split: str = "test") -> pd.DataFrame:
    """One row per model with its ``split`` metrics, and the colour baseline for scale."""
    cols = ("accuracy", "balanced_accuracy", "macro_f1", "top3", "min_class_recall")
    rows = {name: {c: metrics.get(f"{name}/{split}/{c}") for c in cols} for name in models}
    rows["colour histogram + LR"] = {c: metrics.get(f"baseline/{c}") for c in cols}
    if "baseline/color_hist_macro_f1" in metrics:
        rows["colour histogram + LR"]["macro_f1"] = metrics["baseline/color_hist_macro_f1"]
    return pd.DataFrame(rows).T.astype(float).round(3)


def imbalance_metrics(table: pd.DataFrame) -> dict[str, float]:
    out = {}
    for row, key in (("plain cross-entropy", "unweighted"), ("class weights", "weighted")):
        for col in ("macro_f1", "balanced_accuracy", "min_class_recall"):
            out[f"imbalance/{key}_{col}"] = float(table.loc[row, col])
    return out


def embedding_study(model: nn.Module, x_test: np.ndarray, embeddings: np.ndarray, data: BrandData,
                    cfg: config.BrandsConfig) -> dict[str, Any]:
    """The head's penultimate layer on the test split before (a fresh head, same seed) and after
    training: silhouettes and the arrays to plot."""
    test = data.idx("test")
    seed_everything(cfg.seed)
    untrained = BrandHead(embeddings.shape[1], cfg.hidden_dim, len(data.classes), cfg.dropout)
    before = penultimate(untrained, embeddings[test])
    after = penultimate(model, x_test)
    sil = silhouettes(before, after, data.labels[test])
    return {"before": before, "after": after, "indices": test,
            "metrics": {f"embed/{k}": v for k, v in sil.items()}}


def run(cfg: config.BrandsConfig, device=None) -> dict[str, float]:
    """Every step end to end, tracked to W&B; returns flat, slash-named metrics."""
    from cvtasks.models import create_image_encoder
    from cvtasks.tracking import Run

    clock = {}
    t0 = time.perf_counter()
    data = load_data(cfg)
    clock["time/data_s"] = time.perf_counter() - t0
    m: dict[str, float] = data_metrics(data)
    baseline = color_histogram_baseline(data, cfg.hist_bins, cfg.seed)["metrics"]
    m.update(baseline, **{"baseline/color_hist_macro_f1": baseline["baseline/macro_f1"]})

    t0 = time.perf_counter()
    encoder = create_image_encoder(cfg.encoder)
    feats = backbone_features(encoder, data, cfg.finetune_blocks, device=device)
    clock["time/backbone_s"] = time.perf_counter() - t0
    emb, acts = feats["embeddings"], feats["activations"]

    head = train_head(emb, data, hidden_dim=cfg.hidden_dim, dropout=cfg.dropout, lr=cfg.lr,
                      batch_size=cfg.batch_size, epochs=cfg.epochs, patience=cfg.patience, seed=cfg.seed, device=device)
    tuned = finetune(encoder, head.model, acts, data, tail_blocks=cfg.finetune_blocks, lr=cfg.finetune_lr,
                     head_lr=cfg.lr * 0.3, batch_size=cfg.batch_size, epochs=cfg.finetune_epochs, seed=cfg.seed,
                     device=device)
    cnn = train_small_cnn(data, size=cfg.cnn_size, lr=cfg.cnn_lr, batch_size=64, epochs=cfg.cnn_epochs,
                          patience=cfg.patience, seed=cfg.seed, device=device)
    probs = {"frozen": probabilities(head.model, emb, device), "finetuned": probabilities(tuned.model, acts, device),
             "small_cnn": probabilities(cnn.model, cnn_inputs(data, cfg.cnn_size), device)}
    scores, best = model_metrics(probs, data)
    m.update(scores)
    for t in (head, tuned, cnn):
        clock[f"time/{t.name}_s"] = t.seconds
    m.update(imbalance_metrics(imbalance_experiment(emb, data, cfg, device)))

    t0 = time.perf_counter()
    m.update(active_learning(emb, data, cfg)["metrics"])
    clock["time/active_learning_s"] = time.perf_counter() - t0

    model, x = (head.model, emb) if best == "frozen" else (tuned.model, acts)
    study = embedding_study(model, x[data.idx("test")], emb, data, cfg)
    m.update(study["metrics"])
    export_embeddings(study["after"], data, study["indices"], cfg.sprite_size)
    m.update(clock)
    with Run("brands", cfg) as tracking:
        for t in (head, tuned, cnn):
            tracking.log_history(t.history.epochs, prefix=f"{t.name}/")
        tracking.summary(m)
    return {k: float(v) for k, v in m.items()}
