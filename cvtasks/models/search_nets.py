"""The search task's networks on frozen vectors: an MLP on the joined vectors, an interaction
MLP, CLIP-style contrastive towers, and the symmetric InfoNCE loss."""
from __future__ import annotations

import numpy as np
import torch
from torch import nn


class ConcatMLP(nn.Module):
    """An MLP on the joined image and text vectors; sigmoid output in 0..1."""

    def __init__(self, d_img: int, d_txt: int, hidden: int, dropout: float):
        super().__init__()
        self.net = nn.Sequential(nn.Linear(d_img + d_txt, hidden), nn.ReLU(), nn.Dropout(dropout),
                                 nn.Linear(hidden, hidden // 2), nn.ReLU(), nn.Dropout(dropout),
                                 nn.Linear(hidden // 2, 1))

    def forward(self, img: torch.Tensor, txt: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(self.net(torch.cat([img, txt], dim=1))).squeeze(1)

    def grid(self, img: torch.Tensor, txt: torch.Tensor, prior: torch.Tensor | None = None) -> torch.Tensor:
        """(n_txt, n_img) scores of every text against every image: the first layer is split
        into its image and text halves, each applied once per vector instead of once per pair."""
        first, d_img = self.net[0], img.shape[1]
        hidden = (txt @ first.weight[:, d_img:].T)[:, None, :] + (img @ first.weight[:, :d_img].T + first.bias)[None]
        return torch.sigmoid(self.net[1:](hidden)).squeeze(-1)


class InteractionMLP(nn.Module):
    """Both vectors projected to a common space and normalised; the head sees their
    element-wise product and cosine (how well they agree) and the zero-shot scores
    (``prior``), which carry what ~1,900 (query, own image) pairs teach about the two spaces
    far better than one vote per pair does. The projections themselves are left out of the
    head: with them it memorised images and queries."""

    def __init__(self, d_img: int, d_txt: int, proj: int, hidden: int, dropout: float, n_priors: int = 1):
        super().__init__()
        self.img = nn.Sequential(nn.Dropout(dropout), nn.Linear(d_img, proj))
        self.txt = nn.Sequential(nn.Dropout(dropout), nn.Linear(d_txt, proj))
        self.head = nn.Sequential(nn.Linear(proj + 1 + n_priors, hidden), nn.ReLU(), nn.Dropout(dropout),
                                  nn.Linear(hidden, 1))

    def forward(self, img: torch.Tensor, txt: torch.Tensor, prior: torch.Tensor) -> torch.Tensor:
        return self._score(self.img(img), self.txt(txt), prior.reshape(len(img), -1))

    def grid(self, img: torch.Tensor, txt: torch.Tensor, prior: torch.Tensor) -> torch.Tensor:
        """(n_txt, n_img) scores of every text against every image (``prior``: (n_txt, n_img,
        n_priors)); each side is projected once, not once per pair."""
        return self._score(self.img(img)[None], self.txt(txt)[:, None], prior)

    def _score(self, img: torch.Tensor, txt: torch.Tensor, prior: torch.Tensor) -> torch.Tensor:
        """The head on projected vectors that broadcast against each other (pairs or a grid)."""
        product = nn.functional.normalize(img, dim=-1) * nn.functional.normalize(txt, dim=-1)
        features = torch.cat([product, product.sum(dim=-1, keepdim=True), prior], dim=-1)
        return torch.sigmoid(self.head(features)).squeeze(-1)


class TwoTowers(nn.Module):
    """CLIP-style heads on the frozen vectors: each side projected (after dropout) into a
    shared space and normalised; ``forward`` gives the scaled cosine of every text against
    every image in the batch (the logits of the contrastive loss), with a learned temperature."""

    def __init__(self, d_img: int, d_txt: int, dim: int, dropout: float, temperature: float = 0.07):
        super().__init__()
        self.img = nn.Sequential(nn.Dropout(dropout), nn.Linear(d_img, dim))
        self.txt = nn.Sequential(nn.Dropout(dropout), nn.Linear(d_txt, dim))
        self.log_scale = nn.Parameter(torch.tensor(float(np.log(1 / temperature))))

    def embed_images(self, img: torch.Tensor) -> torch.Tensor:
        return nn.functional.normalize(self.img(img), dim=1)

    def embed_texts(self, txt: torch.Tensor) -> torch.Tensor:
        return nn.functional.normalize(self.txt(txt), dim=1)

    def forward(self, img: torch.Tensor, txt: torch.Tensor) -> torch.Tensor:
        return self.log_scale.exp().clamp(max=100) * self.embed_texts(txt) @ self.embed_images(img).T


def info_nce(logits: torch.Tensor, image_ids: torch.Tensor) -> torch.Tensor:
    """Symmetric InfoNCE over a batch of (text, own image) pairs. Two queries of one image can
    share a batch, so every column holding the same image counts as a match (soft targets)."""
    match = (image_ids[:, None] == image_ids[None, :]).float()
    target = match / match.sum(dim=1, keepdim=True)
    return (nn.functional.cross_entropy(logits, target) + nn.functional.cross_entropy(logits.T, target)) / 2
