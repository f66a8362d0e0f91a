"""Spill detection around tap-hole wells: an autoencoder trained on normal images only.

The pieces, in the order the notebook calls them:

1. ``load_data``: the well generator (cvtasks.data.wells) or a user's folder normal/ + spill/.
2. ``make_split``: stratified train / val / test; the autoencoder sees only the *normal*
   training images (``normal_only``), val (both classes) picks the threshold, test reports.
3. ``normalise``: per-image, per-channel standardisation, so that a bright, dim or coloured
   light is removed before the autoencoder sees the image.
4. ``train_autoencoder``: cvtasks.train.fit on batches (x, x), with the validation ROC-AUC
   logged per epoch.
5. ``anomaly_scores``: from the reconstruction error. ``emission`` (default) keeps only the
   light the reconstruction lacks (molten metal emits light, so a spill is always *brighter*
   than the surface the autoencoder redraws), in the image's own brightness units (the
   normalisation undone), weighted by how bright the pixel itself is (glowing metal is near
   white; an unpredictable texture highlight is not), blurred, and takes its maximum;
   ``excess`` is the same without the brightness weight; ``pooled`` is the squared error of
   both signs in normalised units, so a dark slag lump the model fails to redraw counts too.
6. ``choose_threshold``: Youden's J, a fixed false-alarm rate, or a confidence bound on the
   false-alarm rate on validation, applied unchanged to test.
7. Baselines: a supervised CNN (``train_classifier``) and a PatchCore-style nearest-neighbour
   score on pretrained efficientnet_lite0 patch features (``patchcore_scores``).
8. ``run_experiments`` (architecture, loss, learning rate, normalisation) and
   ``error_analysis`` (by lighting condition, smoke and spill size).

``run(cfg)`` does all of it and returns the flat metrics of reports/spill/metrics.json.
"""
from __future__ import annotations

import math
import warnings
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import torch
from scipy.stats import beta
from sklearn.metrics import roc_auc_score, roc_curve
from sklearn.model_selection import train_test_split
from torch import nn
from torch.nn import functional as F
from torch.utils.data import DataLoader, TensorDataset
from torchvision.transforms.functional import gaussian_blur

import config
from cvtasks.cache import cached_arrays
from cvtasks.data.folder import scan_image_folder
from cvtasks.data.wells import CLASSES, WellImages, WellSettings, generate_wells
from cvtasks.metrics import binary_detection_metrics
from cvtasks.models.autoencoder import ConvAutoencoder, EncoderClassifier
from cvtasks.runtime import pick_device, seed_everything
from cvtasks.train import History, accuracy, fit, predict

SIZE_BINS = (0.0, 0.01, 0.03, 1.0)          # spill area (share of pixels): small, medium, large
SIZE_LABELS = ("small <1%", "medium 1-3%", "large >3%")


# --- data ----------------------------------------------------------------------------------
def load_data(cfg: config.SpillConfig) -> WellImages:
    """The generator's images, or a user's photos from ``cfg.photos_dir`` (normal/, spill/)."""
    if cfg.photos_dir is None:
        return generate_wells(WellSettings(n_images=cfg.n_images, size=cfg.image_size, seed=cfg.seed))
    folder = scan_image_folder(cfg.photos_dir, classes=list(CLASSES))
    print(folder.summary())
    if min(folder.counts().values()) < 3:
        raise ValueError(f"{cfg.photos_dir}: need at least 3 images per class, found {folder.counts()}")
    images = np.stack([np.asarray(folder.load(i, cfg.image_size)) for i in range(len(folder))])
    n = len(folder)
    return WellImages(images=images, labels=np.asarray(folder.labels), lighting=np.full(n, "unknown"),
                      smoke=np.zeros(n, bool), spill_area=np.full(n, np.nan))


@dataclass
class Split:
    train: np.ndarray
    val: np.ndarray
    test: np.ndarray


def make_split(labels: np.ndarray, val_fraction: float, test_fraction: float, seed: int) -> Split:
    """Stratified index split; the same for every model of the study."""
    idx = np.arange(len(labels))
    n_test, n_val = round(test_fraction * len(idx)), round(val_fraction * len(idx))
    rest, test = train_test_split(idx, test_size=n_test, stratify=labels, random_state=seed)
    train, val = train_test_split(rest, test_size=n_val, stratify=labels[rest], random_state=seed)
    return Split(np.sort(train), np.sort(val), np.sort(test))


def normal_only(indices: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """The indices among ``indices`` whose image is normal: the autoencoder's training set."""
    return indices[labels[indices] == 0]


def normalise(images: np.ndarray, mode: str = "per_image") -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """uint8 (n, H, W, 3) -> float (n, 3, H, W), plus the shift and scale to undo it.

    ``per_image``: each channel divided by its own median in the image (grey-world white
    balance), which cancels a global gain (bright / dim light) and a colour cast, while the
    contrast of what is in the image (a glowing spill, smoke) stays as it is. The median
    rather than the mean, so that a large bright spill does not darken its own image.
    ``fixed``: the same affine map for every image.
    """
    x = torch.from_numpy(np.ascontiguousarray(images)).permute(0, 3, 1, 2).float() / 255.0
    if mode == "per_image":
        mean = x.flatten(2).median(dim=2).values[..., None, None].clamp_min(0.02)
        std = mean / 2
    elif mode == "fixed":
        mean = torch.full((len(x), 3, 1, 1), 0.5)
        std = torch.full((len(x), 3, 1, 1), 0.25)
    else:
        raise ValueError(f"normalisation {mode!r}: must be 'per_image' or 'fixed'")
    return (x - mean) / std, mean, std


def to_uint8(x: torch.Tensor, mean: torch.Tensor, std: torch.Tensor) -> np.ndarray:
    """Undo ``normalise``: float (n, 3, H, W) -> uint8 (n, H, W, 3) for display."""
    return ((x * std + mean).clamp(0, 1) * 255).round().byte().permute(0, 2, 3, 1).numpy()


# --- scores and threshold --------------------------------------------------------------------
SCORES = ("emission", "excess", "pooled", "mse", "l1")


def error_map(recon: torch.Tensor, x: torch.Tensor, sigma: float, signed: bool = True,
              scale: torch.Tensor | None = None, shift: torch.Tensor | None = None) -> torch.Tensor:
    """Per-pixel squared error summed over channels, blurred: (n, H, W); locates the spill.

    ``signed``: only where the image is brighter than its reconstruction (``x > recon``), the
    light of molten metal that a model of normal wells cannot redraw; a dark lump or soot
    patch it misses does not count. ``scale``: normalise's per-image std (n, C, 1, 1); the
    error is then in the image's own units, where molten metal adds the same light under any
    lighting gain (per-image normalisation would shrink it in bright light and inflate it in dim).
    ``shift`` (with ``scale``: normalise's per-image median): weight each pixel's error by the
    pixel's own brightness in the image (0..1), so that only light that is both unexpected and
    bright counts: glowing metal is near white, while the surface texture the model cannot
    redraw (brighter in bright light) stays well below it.
    """
    diff = x - recon
    if scale is not None:
        diff = diff * scale
    diff = diff.clamp_min(0) if signed else diff
    if shift is not None:
        if scale is None:
            raise ValueError("error_map: the brightness weight (shift) needs scale as well")
        diff = diff * (x * scale + shift).clamp(0, 1)
    err = (diff ** 2).sum(1, keepdim=True)
    if sigma > 0:
        k = 2 * math.ceil(3 * sigma) + 1
        err = gaussian_blur(err, [k, k], [sigma, sigma])
    return err[:, 0]


LOCAL_SCORES = ("emission", "excess", "pooled")   # the maximum of an error map: they locate the spill


def local_error_map(recon: torch.Tensor, x: torch.Tensor, method: str, sigma: float = 1.0,
                    scale: torch.Tensor | None = None, shift: torch.Tensor | None = None) -> torch.Tensor:
    """The blurred per-pixel map (n, H, W) behind a local score: ``pooled`` both signs in normalised
    units; ``excess`` the excess light only, in image units when ``scale`` is given;
    ``emission`` the excess light weighted by the pixel's brightness (needs ``scale`` and ``shift``)."""
    if method == "emission":
        if scale is None or shift is None:
            raise ValueError("the emission score needs the normalisation's scale and shift")
        return error_map(recon, x, sigma, signed=True, scale=scale, shift=shift)
    if method == "excess":
        return error_map(recon, x, sigma, signed=True, scale=scale)
    if method == "pooled":
        return error_map(recon, x, sigma, signed=False)
    raise ValueError(f"score {method!r}: must be one of {', '.join(SCORES)}")


def anomaly_scores(recon: torch.Tensor, x: torch.Tensor, method: str = "emission",
                   sigma: float = 1.0, scale: torch.Tensor | None = None,
                   shift: torch.Tensor | None = None) -> np.ndarray:
    """One score per image; higher means more likely a spill.

    ``mse`` / ``l1``: mean error over the image, diluted by a small spill and raised by texture
    and noise everywhere. The LOCAL_SCORES: the maximum of their ``local_error_map``.
    """
    if method in LOCAL_SCORES:
        s = local_error_map(recon, x, method, sigma, scale, shift).flatten(1).amax(1)
    elif method == "mse":
        s = ((recon - x) ** 2).mean(dim=(1, 2, 3))
    elif method == "l1":
        s = (recon - x).abs().mean(dim=(1, 2, 3))
    else:
        raise ValueError(f"score {method!r}: must be one of {', '.join(SCORES)}")
    return s.numpy().astype(float)


POLICIES = ("youden", "fixed_fpr", "fpr_bound")


def false_alarm_bound(false_alarms: np.ndarray, n_normal: int, confidence: float) -> np.ndarray:
    """One-sided Clopper-Pearson upper bound on the false-alarm rate, from ``false_alarms`` out
    of ``n_normal`` normal images: the true rate is below it with probability ``confidence``."""
    k = np.asarray(false_alarms, dtype=float)
    safe = np.minimum(k, n_normal - 1)          # k = n: the bound is 1 (beta would be undefined)
    return np.where(k >= n_normal, 1.0, beta.ppf(confidence, safe + 1, n_normal - safe))


def choose_threshold(y_val: np.ndarray, scores_val: np.ndarray, policy: str = "youden",
                     target_fpr: float = 0.05, confidence: float = 0.9) -> float:
    """The score threshold (flag a spill when score >= threshold), chosen on validation only.

    ``youden``: maximise TPR - FPR (Youden's J). ``fixed_fpr``: the highest TPR whose false-alarm
    rate on validation stays <= ``target_fpr``. ``fpr_bound``: the highest TPR whose false-alarm
    rate stays <= ``target_fpr`` with probability ``confidence`` (Clopper-Pearson upper bound
    from the validation count): a rate measured on a few hundred normal images is itself
    uncertain, and ``fixed_fpr`` spends the whole budget on that estimate. Ties go to the
    higher threshold (fewer alarms).
    """
    y_val = np.asarray(y_val).astype(int)
    if set(np.unique(y_val)) != {0, 1}:
        raise ValueError("choose_threshold needs validation images of both classes")
    fpr, tpr, thr = roc_curve(y_val, scores_val, drop_intermediate=False)
    if policy == "youden":
        gain = tpr - fpr
    elif policy == "fixed_fpr":
        gain = np.where(fpr <= target_fpr, tpr, -1.0)
    elif policy == "fpr_bound":
        n_normal = int((y_val == 0).sum())
        provable = false_alarm_bound(np.round(fpr * n_normal), n_normal, confidence) <= target_fpr
        if not provable.any():
            warnings.warn(f"{n_normal} normal validation images cannot bound the false-alarm rate at "
                          f"{target_fpr:.1%} with {confidence:.0%} confidence; using the strictest threshold "
                          "(no validation false alarm)", stacklevel=2)
            provable = fpr == 0
        gain = np.where(provable, tpr, -1.0)
    else:
        raise ValueError(f"threshold policy {policy!r}: must be one of {', '.join(POLICIES)}")
    best = int(np.flatnonzero(gain == gain.max())[0])   # thresholds decrease: first = highest
    return float(min(thr[best], np.max(scores_val)) if np.isinf(thr[best]) else thr[best])


def detection(y: np.ndarray, scores: np.ndarray, threshold: float, prefix: str) -> dict[str, float]:
    return binary_detection_metrics(y, scores, threshold, prefix=prefix)


# --- the autoencoder -------------------------------------------------------------------------
LOSSES = {"mse": nn.MSELoss, "l1": nn.L1Loss}


class DihedralBatches:
    """Shuffled batches ``(x, x)`` of normal images, each batch turned by a random multiple of
    90 degrees and mirrored half the time: the camera looks straight down on the well, so a
    turned or mirrored normal well is still a normal well, and 500 training images become
    eight times as many views."""

    def __init__(self, x: torch.Tensor, batch_size: int, seed: int):
        self.x, self.batch_size = x, batch_size
        self.gen = torch.Generator().manual_seed(seed)

    def __len__(self) -> int:
        return -(-len(self.x) // self.batch_size)

    def __iter__(self):
        order = torch.randperm(len(self.x), generator=self.gen)
        for start in range(0, len(order), self.batch_size):
            batch = torch.rot90(self.x[order[start:start + self.batch_size]],
                                int(torch.randint(4, (1,), generator=self.gen)), dims=(2, 3))
            if torch.rand(1, generator=self.gen).item() < 0.5:
                batch = batch.flip(3)
            batch = batch.contiguous()
            yield batch, batch


@torch.no_grad()
def reconstruct(model: nn.Module, x: torch.Tensor, batch_size: int = 256,
                device: str | torch.device | None = None) -> torch.Tensor:
    loader = DataLoader(TensorDataset(x, x), batch_size=batch_size)
    return predict(model, loader, device)[0]


def train_autoencoder(x_train: torch.Tensor, x_val: torch.Tensor, y_val: np.ndarray,
                      val_scale: torch.Tensor | None = None, val_shift: torch.Tensor | None = None, *,
                      depth: int = 3, base: int = 32, bottleneck: int = 16, loss: str = "mse",
                      lr: float = 1e-3, epochs: int = 30, batch_size: int = 32, patience: int | None = 6,
                      augment: bool = False, score: str = "emission", sigma: float = 1.0, seed: int = 42,
                      device: str | torch.device | None = None, run: Any = None,
                      progress: bool = False) -> tuple[ConvAutoencoder, History]:
    """Fit a ConvAutoencoder to reconstruct ``x_train`` (normal images only).

    Each epoch logs the validation loss on both classes, the loss on the normal validation
    images (``val/normal_loss``, which picks the best epoch: no spill label is needed for it)
    and the validation ROC-AUC of the anomaly score, to watch detection improve. ``augment``:
    train on turned and mirrored views (DihedralBatches). The learning rate follows a cosine
    from ``lr`` down over ``epochs``.
    """
    if loss not in LOSSES:
        raise ValueError(f"loss {loss!r}: must be one of {', '.join(LOSSES)}")
    seed_everything(seed)
    model = ConvAutoencoder(depth=depth, base=base, bottleneck=bottleneck)
    y_val = torch.as_tensor(np.asarray(y_val))
    loss_fn = LOSSES[loss]()

    def normal_loss(out: torch.Tensor, tgt: torch.Tensor) -> float:
        return float(loss_fn(out[y_val == 0], tgt[y_val == 0]))

    def val_auc(out: torch.Tensor, tgt: torch.Tensor) -> float:
        return float(roc_auc_score(y_val.numpy(), anomaly_scores(out, tgt, score, sigma, val_scale, val_shift)))

    if augment:
        train_loader = DihedralBatches(x_train, batch_size, seed)
    else:
        train_loader = DataLoader(TensorDataset(x_train, x_train), batch_size=batch_size, shuffle=True,
                                  generator=torch.Generator().manual_seed(seed))
    val_loader = DataLoader(TensorDataset(x_val, x_val), batch_size=256)
    optimizer = torch.optim.Adam(model.parameters(), lr=lr)
    history = fit(model, train_loader, val_loader, epochs=epochs, optimizer=optimizer,
                  scheduler=torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, epochs), loss_fn=loss_fn,
                  metrics={"normal_loss": normal_loss, "roc_auc": val_auc}, monitor="val/normal_loss",
                  mode="min", patience=patience, device=device, seed=seed, run=run, progress=progress)
    return model.cpu().eval(), history


# --- baseline 1: a supervised CNN --------------------------------------------------------------
def train_classifier(x_train: torch.Tensor, y_train: np.ndarray, x_val: torch.Tensor, y_val: np.ndarray,
                     *, depth: int = 3, base: int = 32, lr: float = 1e-3, epochs: int = 10,
                     batch_size: int = 32, patience: int | None = 4, seed: int = 42,
                     device: str | torch.device | None = None, run: Any = None,
                     progress: bool = False) -> tuple[EncoderClassifier, History]:
    """The autoencoder's encoder with a two-class head, trained on labelled spills too."""
    seed_everything(seed)
    model = EncoderClassifier(n_classes=2, depth=depth, base=base)
    gen = torch.Generator().manual_seed(seed)
    yt, yv = torch.as_tensor(np.asarray(y_train)).long(), torch.as_tensor(np.asarray(y_val)).long()
    train_loader = DataLoader(TensorDataset(x_train, yt), batch_size=batch_size, shuffle=True, generator=gen)
    val_loader = DataLoader(TensorDataset(x_val, yv), batch_size=256)
    history = fit(model, train_loader, val_loader, epochs=epochs,
                  optimizer=torch.optim.Adam(model.parameters(), lr=lr), loss_fn=nn.CrossEntropyLoss(),
                  metrics={"acc": accuracy}, monitor="val/loss", mode="min", patience=patience,
                  device=device, seed=seed, run=run, progress=progress)
    return model.cpu().eval(), history


def classifier_scores(model: nn.Module, x: torch.Tensor, device: str | torch.device | None = None) -> np.ndarray:
    """Probability of the spill class."""
    loader = DataLoader(TensorDataset(x, torch.zeros(len(x))), batch_size=256)
    logits = predict(model, loader, device)[0]
    return torch.softmax(logits, 1)[:, 1].numpy().astype(float)


# --- baseline 2: PatchCore-style nearest neighbours on pretrained patch features ------------------
PATCH_BLOCKS = (3, 4)   # efficientnet_lite0 blocks at stride 16: 80 + 112 channels


@torch.no_grad()
def _patch_features(encoder: Any, images: np.ndarray, size: int, batch_size: int,
                    device: torch.device) -> np.ndarray:
    """(n, H*W, C) locally averaged patch features from the blocks in PATCH_BLOCKS."""
    net = encoder.backbone.eval().to(device)
    prep = encoder.preprocessing
    mean = torch.tensor(prep.mean).view(1, 3, 1, 1)
    std = torch.tensor(prep.std).view(1, 3, 1, 1)
    out = []
    for start in range(0, len(images), batch_size):
        x = torch.from_numpy(images[start:start + batch_size]).permute(0, 3, 1, 2).float() / 255.0
        x = F.interpolate(x, size=(size, size), mode="bilinear", align_corners=False)
        h = net.bn1(net.conv_stem(((x - mean) / std).to(device)))
        maps = []
        for i, block in enumerate(net.blocks[:max(PATCH_BLOCKS) + 1]):
            h = block(h)
            if i in PATCH_BLOCKS:
                maps.append(F.avg_pool2d(h, 3, stride=1, padding=1))   # PatchCore's neighbourhood
        f = torch.cat(maps, 1)
        out.append(f.flatten(2).transpose(1, 2).float().cpu().numpy())
    return np.concatenate(out)


def patch_features(images: np.ndarray, data_key: Any, size: int = 128, batch_size: int = 64,
                   device: str | torch.device | None = None) -> np.ndarray:
    """Patch features of every image, cached by the data, the encoder and the input size."""
    from cvtasks.models import create_image_encoder

    key = {"encoder": config.OFFLINE_IMAGE_ENCODER, "blocks": PATCH_BLOCKS, "size": size, "data": data_key}
    compute = lambda: {"features": _patch_features(  # noqa: E731
        create_image_encoder(config.OFFLINE_IMAGE_ENCODER), images, size, batch_size, pick_device(device))}
    return cached_arrays("spill-patches", key, compute)["features"]


def greedy_coreset(bank: torch.Tensor, n: int, seed: int = 42) -> torch.Tensor:
    """PatchCore's k-centre greedy subsample: each new patch is the farthest from those chosen."""
    if n >= len(bank):
        return bank
    g = torch.Generator().manual_seed(seed)
    chosen = [int(torch.randint(len(bank), (1,), generator=g))]
    nearest = torch.cdist(bank, bank[chosen[0]][None])[:, 0]
    for _ in range(n - 1):
        chosen.append(int(nearest.argmax()))
        nearest = torch.minimum(nearest, torch.cdist(bank, bank[chosen[-1]][None])[:, 0])
    return bank[chosen]


def patchcore_scores(train_features: np.ndarray, features: np.ndarray, coreset: float = 0.1,
                     seed: int = 42) -> tuple[np.ndarray, np.ndarray]:
    """Image scores (max over patches of the distance to the nearest normal patch) and patch maps.

    ``train_features``: (n, P, C) of normal training images only: the memory bank.
    """
    bank = torch.from_numpy(train_features.reshape(-1, train_features.shape[-1]))
    bank = greedy_coreset(bank, max(1, int(round(coreset * len(bank)))), seed)
    q = torch.from_numpy(features)
    dist = torch.cat([torch.cdist(q[i:i + 64].flatten(0, 1), bank).amin(1).view(-1, q.shape[1])
                      for i in range(0, len(q), 64)])
    side = int(round(math.sqrt(q.shape[1])))
    return dist.amax(1).numpy().astype(float), dist.view(-1, side, side).numpy()


# --- experiments and error analysis ---------------------------------------------------------------
def experiment_variants(cfg: config.SpillConfig) -> list[dict[str, Any]]:
    """The architecture / loss / learning-rate / normalisation / augmentation variants, each one change away
    from the baseline settings of ``cfg``."""
    base = {"depth": cfg.depth, "bottleneck": cfg.bottleneck, "loss": cfg.loss, "lr": cfg.lr,
            "normalisation": cfg.normalisation, "augment": cfg.augment}
    changes = [{}, {"depth": cfg.depth - 1}, {"depth": cfg.depth + 1}, {"bottleneck": cfg.bottleneck // 4},
               {"bottleneck": cfg.bottleneck * 4}, {"loss": "l1" if cfg.loss == "mse" else "mse"},
               {"lr": cfg.lr * 10}, {"normalisation": "fixed"}, {"augment": not cfg.augment}]
    return [{"change": ", ".join(f"{k}={v}" for k, v in c.items()) or "baseline", **base, **c}
            for c in changes if c.get("depth", 1) >= 1 and c.get("bottleneck", 1) >= 1]


def run_experiments(images: np.ndarray, labels: np.ndarray, split: Split, cfg: config.SpillConfig,
                    *, epochs: int, device: str | torch.device | None = None) -> pd.DataFrame:
    """Train each variant on the same split for ``epochs``; validation and test figures per row."""
    rows = []
    for v in experiment_variants(cfg):
        x, shift, scale = normalise(images, v["normalisation"])
        train = normal_only(split.train, labels)
        model, hist = train_autoencoder(x[train], x[split.val], labels[split.val], scale[split.val], shift[split.val],
                                        depth=v["depth"], base=cfg.base_channels, bottleneck=v["bottleneck"],
                                        loss=v["loss"], lr=v["lr"], epochs=epochs, batch_size=cfg.batch_size,
                                        patience=None, augment=v["augment"], score=cfg.score, sigma=cfg.score_sigma,
                                        seed=cfg.seed, device=device)
        s_val, s_test = (anomaly_scores(reconstruct(model, x[i], device=device), x[i], cfg.score, cfg.score_sigma,
                                        scale[i], shift[i]) for i in (split.val, split.test))
        thr = choose_threshold(labels[split.val], s_val, cfg.threshold_policy, cfg.target_fpr, cfg.fpr_confidence)
        m = detection(labels[split.test], s_test, thr, "test")
        rows.append({**v, "best_epoch": hist.best_epoch, "val_roc_auc": roc_auc_score(labels[split.val], s_val),
                     **{k.split("/")[1]: m[k] for k in ("test/roc_auc", "test/pr_auc", "test/tpr", "test/tnr")},
                     "seconds": hist.seconds})
    return pd.DataFrame(rows).set_index("change").round(3)


def error_analysis(data: WellImages, idx: np.ndarray, flagged: dict[str, np.ndarray]) -> pd.DataFrame:
    """Share of images flagged, per group, for each detector: on normal images that is the
    false-alarm rate (1 - TNR), on spills the detection rate (TPR)."""
    labels = data.labels[idx]
    area = data.spill_area[idx]
    size = pd.cut(area, SIZE_BINS, labels=SIZE_LABELS, right=False).astype(str)
    groups = {
        **{("normal: false alarms", f"light={c}"): (labels == 0) & (data.lighting[idx] == c)
           for c in np.unique(data.lighting[idx])},
        ("normal: false alarms", "smoke"): (labels == 0) & data.smoke[idx],
        **{("spill: detected", f"light={c}"): (labels == 1) & (data.lighting[idx] == c)
           for c in np.unique(data.lighting[idx])},
        ("spill: detected", "smoke"): (labels == 1) & data.smoke[idx],
        **{("spill: detected", f"size {s}"): (labels == 1) & (size == s) for s in SIZE_LABELS},
    }
    rows = []
    for (kind, group), mask in groups.items():
        if mask.any():
            rows.append({"images": kind, "group": group, "n": int(mask.sum()),
                         **{name: float(f[mask].mean()) for name, f in flagged.items()}})
    return pd.DataFrame(rows).set_index(["images", "group"]).round(3)


# --- the whole study ------------------------------------------------------------------------------
@dataclass
class Study:
    """Everything the notebook shows: data, split, models, histories, scores and thresholds."""

    cfg: config.SpillConfig
    data: WellImages
    split: Split
    x: torch.Tensor
    mean: torch.Tensor
    std: torch.Tensor
    ae_train: np.ndarray
    autoencoder: ConvAutoencoder | None = None
    ae_history: History | None = None
    scores: dict[str, dict[str, np.ndarray]] | None = None      # detector -> split -> scores
    thresholds: dict[str, float] | None = None
    cnn_history: History | None = None
    patch_maps: np.ndarray | None = None                       # test images' PatchCore maps
    experiments: pd.DataFrame | None = None


def prepare(cfg: config.SpillConfig) -> Study:
    """Data, split and normalised tensors: the first step of the study."""
    data = load_data(cfg)
    split = make_split(data.labels, cfg.val_fraction, cfg.test_fraction, cfg.seed)
    x, mean, std = normalise(data.images, cfg.normalisation)
    return Study(cfg, data, split, x, mean, std, ae_train=normal_only(split.train, data.labels))


def fit_autoencoder(study: Study, device: Any = None, run: Any = None) -> None:
    cfg, s, y = study.cfg, study.split, study.data.labels
    study.autoencoder, study.ae_history = train_autoencoder(
        study.x[study.ae_train], study.x[s.val], y[s.val], study.std[s.val], study.mean[s.val],
        depth=cfg.depth, base=cfg.base_channels, bottleneck=cfg.bottleneck, loss=cfg.loss, lr=cfg.lr,
        epochs=cfg.epochs, batch_size=cfg.batch_size, patience=cfg.patience, augment=cfg.augment,
        score=cfg.score, sigma=cfg.score_sigma, seed=cfg.seed, device=device, run=run)
    study.scores = study.scores or {}
    study.scores.update(score_table(study, device))


def score_table(study: Study, device: Any = None) -> dict[str, dict[str, np.ndarray]]:
    """Every reconstruction score (SCORES) of the autoencoder on val and test."""
    out: dict[str, dict[str, np.ndarray]] = {}
    for part in ("val", "test"):
        idx = getattr(study.split, part)
        recon = reconstruct(study.autoencoder, study.x[idx], device=device)
        for method in SCORES:
            name = "autoencoder" if method == study.cfg.score else f"ae_{method}"
            out.setdefault(name, {})[part] = anomaly_scores(recon, study.x[idx], method, study.cfg.score_sigma,
                                                            study.std[idx], study.mean[idx])
    return out


def fit_baselines(study: Study, device: Any = None, run: Any = None) -> None:
    cfg, s, y = study.cfg, study.split, study.data.labels
    cnn, study.cnn_history = train_classifier(
        study.x[s.train], y[s.train], study.x[s.val], y[s.val], depth=cfg.depth, base=cfg.base_channels,
        lr=cfg.lr, epochs=cfg.cnn_epochs, batch_size=cfg.batch_size, seed=cfg.seed, device=device, run=run)
    study.scores["supervised"] = {p: classifier_scores(cnn, study.x[getattr(s, p)], device) for p in ("val", "test")}
    data_key = {"images": int(study.data.images.sum(dtype=np.int64)), "n": len(y),
                "cfg": {k: v for k, v in cfg.to_dict().items() if k in ("photos_dir", "n_images", "image_size", "seed")}}
    feats = patch_features(study.data.images, data_key, cfg.patchcore_size, device=device)
    normal_train = normal_only(s.train, y)
    for part in ("val", "test"):
        scores, maps = patchcore_scores(feats[normal_train], feats[getattr(s, part)], cfg.patchcore_coreset, cfg.seed)
        study.scores.setdefault("patchcore", {})[part] = scores
    study.patch_maps = maps


def evaluate_all(study: Study) -> dict[str, float]:
    """Thresholds on validation, metrics on test, for every detector; flat metric keys."""
    cfg, s, y = study.cfg, study.split, study.data.labels
    study.thresholds, metrics = {}, {}
    for name, sc in study.scores.items():
        thr = choose_threshold(y[s.val], sc["val"], cfg.threshold_policy, cfg.target_fpr, cfg.fpr_confidence)
        study.thresholds[name] = thr
        prefix = "" if name == "autoencoder" else f"{name}/"
        metrics.update(detection(y[s.val], sc["val"], thr, f"{prefix}val"))
        metrics.update(detection(y[s.test], sc["test"], thr, f"{prefix}test"))
        metrics[f"{prefix}threshold"] = thr
    return metrics


def policy_table(study: Study, name: str = "autoencoder") -> pd.DataFrame:
    """One detector's validation and test TPR / TNR under each threshold policy (each
    threshold chosen on validation): what the choice of policy costs or buys."""
    cfg, s, y = study.cfg, study.split, study.data.labels
    sc = study.scores[name]
    rows = {}
    for policy in POLICIES:
        thr = choose_threshold(y[s.val], sc["val"], policy, cfg.target_fpr, cfg.fpr_confidence)
        label = {"fixed_fpr": f"fixed_fpr ({cfg.target_fpr:.0%})",
                 "fpr_bound": f"fpr_bound ({cfg.target_fpr:.0%} at {cfg.fpr_confidence:.0%})"}.get(policy, policy)
        rows[label] = {"threshold": thr, **{f"{part}/{m}": detection(y[idx], sc[part], thr, part)[f"{part}/{m}"]
                                            for part, idx in (("val", s.val), ("test", s.test)) for m in ("tpr", "tnr")}}
    return pd.DataFrame(rows).T.round(3)


def metrics_table(metrics: dict[str, float]) -> pd.DataFrame:
    """Test metrics side by side: one row per detector."""
    rows = {}
    for key, value in metrics.items():
        parts = key.split("/")
        if "test" in parts:
            name = "autoencoder" if parts[0] == "test" else parts[0]
            rows.setdefault(name, {})[parts[-1]] = value
    return pd.DataFrame(rows).T.round(3)


def examples_by_lighting(data: WellImages) -> np.ndarray:
    """One normal and one spill image per lighting condition (the first of each), for figures."""
    picks = [np.flatnonzero((data.lighting == c) & (data.labels == k))[:1]
             for k in (0, 1) for c in np.unique(data.lighting)]
    return np.concatenate(picks)


def reconstruction_examples(study: Study, n: int = 4, part: str = "test") -> tuple[list, list, list, list]:
    """The ``n`` highest- and lowest-scoring spills and normals of ``part``: images, their
    reconstructions, error maps and titles, for spill_plots.reconstruction_grid."""
    idx = getattr(study.split, part)
    s = study.scores["autoencoder"][part]
    y = study.data.labels[idx]
    order = np.argsort(s)
    spills, normals = order[y[order] == 1], order[y[order] == 0]
    chosen = np.concatenate([spills[::-1][:n], spills[:n], normals[::-1][:n], normals[:n]])
    sel = idx[chosen]
    recon = reconstruct(study.autoencoder, study.x[sel])
    method = study.cfg.score if study.cfg.score in LOCAL_SCORES else "pooled"   # a global score has no map
    maps = local_error_map(recon, study.x[sel], method, study.cfg.score_sigma, study.std[sel], study.mean[sel]).numpy()
    titles = [f"{CLASSES[study.data.labels[i]]} {study.data.lighting[i]}\nscore {s[c]:.2f}"
              for i, c in zip(sel, chosen)]
    return list(study.data.images[sel]), list(to_uint8(recon, study.mean[sel], study.std[sel])), list(maps), titles


def flagged(study: Study, part: str = "test") -> dict[str, np.ndarray]:
    """Which images each detector flags as spills, at its validation threshold."""
    return {name: sc[part] >= study.thresholds[name] for name, sc in study.scores.items()
            if not name.startswith("ae_")}


def run(cfg: config.SpillConfig, device: Any = None) -> dict[str, float]:
    """The whole study; returns the flat metrics of reports/spill/metrics.json."""
    from cvtasks.tracking import Run

    with Run("spill", cfg) as tracker:
        study = prepare(cfg)
        fit_autoencoder(study, device, run=tracker)
        fit_baselines(study, device)
        metrics = evaluate_all(study)
        study.experiments = run_experiments(study.data.images, study.data.labels, study.split, cfg,
                                            epochs=cfg.experiment_epochs, device=device)
        tracker.log_table("experiments", study.experiments.reset_index())
        tracker.log_table("error_analysis", error_analysis(study.data, study.split.test, flagged(study)).reset_index())
        tracker.summary(metrics)
    return metrics

