"""Fine-tune a pretrained encoder on DeepFashion's 17 categories.

ResNet-18 (ImageNet weights from the Hugging Face hub) when online; offline the packaged
efficientnet_lite0. ``encoder="auto"`` takes the first that works. The backbone is frozen but
for its last ``train_last`` parameterised top-level modules (ResNet: layer4, ...;
EfficientNet: bn2, conv_head, ...); a new linear head classifies the penultimate features.
Runs here only on a tiny fixture: the real data set is online only (see docs/fashion.md).
"""
from __future__ import annotations

from dataclasses import replace

import torch
from sklearn.model_selection import train_test_split
from torch import nn
from torch.utils.data import DataLoader, Subset

import config
from cvtasks.data.deepfashion import DeepFashionDataset
from cvtasks.models import ImageEncoder, OfflineError, create_image_encoder
from cvtasks.train import FitOptions, History, accuracy, fit

ONLINE_ENCODER = "resnet18"


def create_encoder(name: str = "auto") -> ImageEncoder:
    """``name`` from config.IMAGE_ENCODERS, or "auto": resnet18 when its hub answers, else the offline one."""
    if name != "auto":
        return create_image_encoder(name)
    try:
        return create_image_encoder(ONLINE_ENCODER)
    except OfflineError as err:
        print(f"{err}\n-> fine-tuning {config.OFFLINE_IMAGE_ENCODER} instead")
        return create_image_encoder(config.OFFLINE_IMAGE_ENCODER)


class EncoderClassifier(nn.Module):
    """A pretrained encoder's penultimate features -> dropout -> linear layer over the categories."""

    def __init__(self, encoder: ImageEncoder, num_classes: int, dropout: float, train_last: int):
        super().__init__()
        self.encoder = encoder
        self.head = nn.Sequential(nn.Dropout(dropout), nn.Linear(encoder.embed_dim, num_classes))
        for p in encoder.parameters():
            p.requires_grad = False
        classifier = encoder.backbone.get_classifier()
        tunable = [m for m in encoder.backbone.children()
                   if m is not classifier and any(True for _ in m.parameters())]
        for module in tunable[len(tunable) - train_last:] if train_last > 0 else []:
            for p in module.parameters():
                p.requires_grad = True

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.encoder.embed(x))


def finetune(dataset: DeepFashionDataset, settings: config.FinetuneSettings = config.FinetuneSettings(), *,
             encoder: str | ImageEncoder = "auto", device: str | torch.device | None = None,
             progress: bool = False) -> tuple[EncoderClassifier, History]:
    """Fine-tune on a stratified split of ``dataset``; returns the best model (by val/acc) and history.

    ``settings.image_size``: input side (default: the encoder's own, 224); smaller sizes make tests cheap.
    """
    s = settings
    epochs, batch_size, lr, image_size, val_fraction, seed = (s.epochs, s.batch_size, s.lr, s.image_size,
                                                              s.val_fraction, s.seed)
    if len(set(dataset.labels)) < 2:
        raise ValueError("fine-tuning needs images of at least two categories")
    enc = encoder if isinstance(encoder, ImageEncoder) else create_encoder(encoder)
    prep = replace(enc.preprocessing, size=image_size) if image_size else enc.preprocessing
    data = dataset.with_transform(prep.transform())
    idx = list(range(len(data)))
    train_idx, val_idx = train_test_split(idx, test_size=val_fraction, random_state=seed,
                                          stratify=data.labels if _stratifiable(data.labels, val_fraction) else None)
    gen = torch.Generator().manual_seed(seed)
    train = DataLoader(Subset(data, train_idx), batch_size=batch_size, shuffle=True, generator=gen)
    val = DataLoader(Subset(data, val_idx), batch_size=batch_size)
    model = EncoderClassifier(enc, len(dataset.classes), dropout=s.dropout, train_last=s.train_last)
    params = [p for p in model.parameters() if p.requires_grad]
    history = fit(model, train, val, optimizer=torch.optim.AdamW(params, lr=lr),
                  loss_fn=nn.functional.cross_entropy, metrics={"acc": accuracy}, device=device,
                  options=FitOptions(epochs=epochs, monitor="val/acc", mode="max", seed=seed, progress=progress))
    return model, history


def _stratifiable(labels: list[int], val_fraction: float) -> bool:
    counts = {y: labels.count(y) for y in set(labels)}
    return min(counts.values()) >= 2 and round(len(labels) * val_fraction) >= len(counts)
