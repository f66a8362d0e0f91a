"""Anomaly scores from an autoencoder's reconstruction: global means, and local maxima of an
error map that keep only the light a reconstruction lacks (molten metal emits light), weighted
by how bright and how warm in colour that light is (molten metal glows orange to yellow-white)."""
from __future__ import annotations

import math

import numpy as np
import torch
from torchvision.transforms.functional import gaussian_blur

SCORES = ("glow", "emission", "excess", "pooled", "mse", "l1")


def error_map(recon: torch.Tensor, x: torch.Tensor, sigma: float, signed: bool = True,
              scale: torch.Tensor | None = None, shift: torch.Tensor | None = None,
              warm: bool = False) -> torch.Tensor:
    """Per-pixel squared error summed over channels, blurred: (n, H, W); locates the spill.

    ``signed``: only where the image is brighter than its reconstruction (``x > recon``), the
    light of molten metal that a model of normal wells cannot redraw; a dark lump or soot
    patch it misses does not count. ``scale``: normalise's scale, (n, C, 1, 1) or per pixel
    (n, C, H, W); the error is then in the image's own units, where molten metal adds the same
    light under any lighting (normalised units would shrink it in bright light and inflate it in
    dim). ``shift`` (with ``scale``: normalise's shift): weight each pixel's error by the
    pixel's own brightness in the image (0..1), so that only light that is both unexpected and
    bright counts: glowing metal is near white, while the surface texture the model cannot
    redraw (brighter in bright light) stays well below it. ``warm`` (with ``shift``): weight it
    also by the pixel's warmth, red minus blue (0..1): glowing metal is orange to yellow-white,
    while reflected light keeps the surface's grey-brown, and a surface lit past the sensor's
    range clips to white (red equal to blue), so unexpected light there does not count.
    """
    diff = x - recon
    if scale is not None:
        diff = diff * scale
    diff = diff.clamp_min(0) if signed else diff
    if shift is not None:
        if scale is None:
            raise ValueError("error_map: the brightness weight (shift) needs scale as well")
        image = (x * scale + shift).clamp(0, 1)
        diff = diff * image
        if warm:
            diff = diff * (image[:, :1] - image[:, 2:]).clamp_min(0)
    elif warm:
        raise ValueError("error_map: the warmth weight needs the image (scale and shift)")
    err = (diff ** 2).sum(1, keepdim=True)
    if sigma > 0:
        k = 2 * math.ceil(3 * sigma) + 1
        err = gaussian_blur(err, [k, k], [sigma, sigma])
    return err[:, 0]


LOCAL_SCORES = ("glow", "emission", "excess", "pooled")   # the maximum of an error map: they locate the spill


def local_error_map(recon: torch.Tensor, x: torch.Tensor, method: str, sigma: float,
                    scale: torch.Tensor | None = None, shift: torch.Tensor | None = None) -> torch.Tensor:
    """The blurred per-pixel map (n, H, W) behind a local score: ``pooled`` both signs in normalised
    units; ``excess`` the excess light only, in image units when ``scale`` is given;
    ``emission`` the excess light weighted by the pixel's brightness; ``glow`` by its brightness
    and its warmth (both need ``scale`` and ``shift``)."""
    if method in ("glow", "emission"):
        if scale is None or shift is None:
            raise ValueError(f"the {method} score needs the normalisation's scale and shift")
        return error_map(recon, x, sigma, signed=True, scale=scale, shift=shift, warm=method == "glow")
    if method == "excess":
        return error_map(recon, x, sigma, signed=True, scale=scale)
    if method == "pooled":
        return error_map(recon, x, sigma, signed=False)
    raise ValueError(f"score {method!r}: must be one of {', '.join(SCORES)}")


def anomaly_scores(recon: torch.Tensor, x: torch.Tensor, method: str, sigma: float,
                   scale: torch.Tensor | None = None,
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
