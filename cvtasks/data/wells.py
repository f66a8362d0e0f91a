"""A generator of top-down tap-hole well photos, with and without molten-metal spills.

No public tap-hole data exists, so the embedded default is drawn here with numpy. Each image
is a well (a dark hole with a refractory rim, slag lumps and soot) in a textured metal /
refractory surface. Spill images add molten metal: a bright, glowing, irregular flow that
starts on the rim and runs beyond it, of random size down to a few pixels. Both classes get
the nuisances a plant camera sees, which must *not* count as spills: lighting (bright, dim,
coloured, glare, hot reflections that look like metal), a light gradient, camera shift and
scale, sensor noise, and smoke or steam.

Images are deterministic by (seed, index): image i does not depend on how many are drawn.
``generate_wells`` caches the whole set through cvtasks.cache, keyed by its settings.
Per image it records the lighting condition, smoke, and the spill's area (share of pixels),
for the error analysis.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
from scipy.ndimage import gaussian_filter

from cvtasks.cache import cached_arrays

CLASSES = ("normal", "spill")
LIGHTING = ("normal", "bright", "dim", "coloured", "glare", "hot_reflection")
LIGHTING_P = (0.25, 0.15, 0.15, 0.15, 0.15, 0.15)
# Lighting the training images never have: the lighting-shift test set draws only these.
# Overexposed: a gain beyond "bright", clipping the highlights; dusk: darker than "dim" with a blue
# cast; spotlight: one pool of strong light, the rest of the scene dark (a gain that varies
# across the image, which a per-image normalisation cannot undo).
SHIFT_LIGHTING = ("overexposed", "dusk", "spotlight")
# Other lighting the training images never have, for choosing what copes with new lighting on
# validation (never on the shift test set): a camera flash (bright centre, dark corners), a low
# lamp on one side (a steep gradient across the scene), and night under sodium lamps.
VAL_SHIFT_LIGHTING = ("flash", "side_lamp", "night")
GENERATOR_VERSION = 2   # bump when the drawing changes, so that old caches are not reused

# Colour casts of coloured light (multiplied into the reflected light): sodium, cool LED, green.
_CASTS = np.array([[1.25, 1.0, 0.6], [0.7, 0.9, 1.3], [0.85, 1.2, 0.8]])


@dataclass(frozen=True)
class WellSettings:
    """What the generator draws; the cache key."""

    n_images: int = 2000
    size: int = 64
    seed: int = 42
    min_spill_area: float = 0.004   # share of the image covered by the smallest spills
    max_spill_area: float = 0.08
    smoke_probability: float = 0.3
    lighting: tuple[str, ...] = LIGHTING          # the conditions drawn from ...
    lighting_p: tuple[float, ...] = LIGHTING_P    # ... with these probabilities

    def __post_init__(self) -> None:
        if self.n_images < 2:
            raise ValueError(f"n_images = {self.n_images}: need at least one image per class")
        if self.size < 16:
            raise ValueError(f"size = {self.size}: must be >= 16 pixels")
        if not 0 < self.min_spill_area <= self.max_spill_area < 1:
            raise ValueError(f"spill areas {self.min_spill_area}..{self.max_spill_area}: "
                             "need 0 < min <= max < 1")
        known = LIGHTING + SHIFT_LIGHTING + VAL_SHIFT_LIGHTING
        unknown = set(self.lighting) - set(known)
        if unknown or len(self.lighting) != len(self.lighting_p) or abs(sum(self.lighting_p) - 1) > 1e-9:
            raise ValueError(f"lighting {self.lighting} with probabilities {self.lighting_p}: need known "
                             f"conditions ({', '.join(known)}) and probabilities summing to 1")


@dataclass
class WellImages:
    """Images (n, H, W, 3) uint8, labels (0 normal, 1 spill) and what each image shows."""

    images: np.ndarray
    labels: np.ndarray
    lighting: np.ndarray       # one of LIGHTING per image
    smoke: np.ndarray          # bool
    spill_area: np.ndarray     # share of pixels covered by molten metal (0 for normal)

    def __len__(self) -> int:
        return len(self.labels)


def _smooth_noise(rng: np.random.Generator, n: int, sigma: float) -> np.ndarray:
    """Zero-mean, unit-std smooth noise of correlation length ``sigma`` pixels."""
    field = gaussian_filter(rng.standard_normal((n, n)), sigma, mode="wrap")
    return field / (field.std() + 1e-8)


def _blob_mask(yy, xx, cy, cx, ry, rx, angle):
    """Soft-edged ellipse (1 inside, 0 outside) for glare and reflections."""
    c, s = np.cos(angle), np.sin(angle)
    u, v = (xx - cx) * c + (yy - cy) * s, -(xx - cx) * s + (yy - cy) * c
    return np.exp(-0.5 * ((u / rx) ** 2 + (v / ry) ** 2))


def _spill_mask(rng, yy, xx, cy, cx, radius, area, n):
    """An irregular flow from the rim outward, covering about ``area`` of the image."""
    theta = rng.uniform(0, 2 * np.pi)
    length = np.sqrt(area) * rng.uniform(1.2, 2.0)        # longer than wide
    width = area / length
    steps = 8
    field = np.full(yy.shape, np.inf)
    heading = theta
    py, px = cy + 0.9 * radius * np.sin(theta), cx + 0.9 * radius * np.cos(theta)
    for k in range(steps):
        w = width * rng.uniform(0.5, 0.9) * (1.15 - 0.5 * k / steps)
        dist = np.hypot(yy - py, xx - px) / w
        field = np.minimum(field, dist)
        heading += rng.normal(0, 0.5)
        py += np.sin(heading) * length / steps
        px += np.cos(heading) * length / steps
    rough = _smooth_noise(rng, n, n / 40)
    return field + 0.25 * rough < 1.0


def _draw(rng: np.random.Generator, size: int, spill: bool, settings: WellSettings) -> tuple:
    n = size
    yy, xx = np.mgrid[0:n, 0:n] / n
    # Camera shift and scale move and resize the well.
    cy, cx = 0.5 + rng.uniform(-0.08, 0.08, 2)
    radius = 0.16 * rng.uniform(0.8, 1.25)
    # Surface: metal / refractory with texture at two scales.
    base = np.array([0.42, 0.38, 0.34]) * rng.uniform(0.85, 1.15, 3)
    texture = 0.07 * _smooth_noise(rng, n, n / 128) + 0.08 * _smooth_noise(rng, n, n / 21)
    albedo = base * (1 + texture)[..., None]
    # The well: an irregular rim of light refractory around a dark hole.
    r = np.hypot(yy - cy, xx - cx)
    wobble = 1 + 0.06 * _smooth_noise(rng, n, n / 12)
    rim = (r < radius * 1.4 * wobble) & (r >= radius * wobble)
    hole = r < radius * wobble
    rim_colour = np.array([0.6, 0.55, 0.48]) * rng.uniform(0.9, 1.1)
    albedo[rim] = rim_colour * (1 + 1.5 * texture[rim])[:, None]
    depth = np.clip(r / radius, 0, 1)[..., None]
    albedo = np.where(hole[..., None], 0.05 + 0.08 * depth * np.array([1, 0.9, 0.8]), albedo)
    # Slag lumps near the rim, and soot that darkens one side.
    for _ in range(rng.integers(4, 12)):
        a, d = rng.uniform(0, 2 * np.pi), radius * rng.uniform(1.1, 1.9)
        lump = np.hypot(yy - cy - d * np.sin(a), xx - cx - d * np.cos(a)) < rng.uniform(0.012, 0.035)
        albedo[lump] = np.array([0.27, 0.25, 0.22]) * rng.uniform(0.7, 1.4) * (1 + texture[lump])[:, None]
    a = rng.uniform(0, 2 * np.pi)
    soot = _blob_mask(yy, xx, cy + 1.5 * radius * np.sin(a), cx + 1.5 * radius * np.cos(a),
                      radius * rng.uniform(0.8, 1.6), radius * rng.uniform(0.8, 1.6), rng.uniform(0, np.pi))
    albedo = albedo * (1 - rng.uniform(0.2, 0.55) * soot)[..., None]
    # Light: a gradient over the scene times the condition's gain and colour.
    lighting = settings.lighting[rng.choice(len(settings.lighting), p=settings.lighting_p)]
    g = rng.uniform(-1, 1, 2)
    light = (1 + 0.25 * (g[0] * (yy - 0.5) + g[1] * (xx - 0.5)))[..., None] * np.ones(3)
    if lighting == "overexposed":
        light = light * rng.uniform(1.7, 2.2)
    elif lighting == "dusk":
        light = light * rng.uniform(0.12, 0.25) * np.array([0.75, 0.9, 1.3])
    elif lighting == "spotlight":
        beam = _blob_mask(yy, xx, *rng.uniform(0.3, 0.7, 2), rng.uniform(0.18, 0.3), rng.uniform(0.18, 0.3),
                          rng.uniform(0, np.pi))
        light = light * (rng.uniform(0.35, 0.55) + rng.uniform(1.2, 1.6) * beam)[..., None]
    elif lighting == "flash":
        falloff = np.exp(-((yy - 0.5) ** 2 + (xx - 0.5) ** 2) / (2 * rng.uniform(0.25, 0.4) ** 2))
        light = light * (rng.uniform(0.3, 0.5) + rng.uniform(1.1, 1.5) * falloff)[..., None]
    elif lighting == "side_lamp":
        a = rng.uniform(0, 2 * np.pi)
        along = np.clip(0.5 + (yy - 0.5) * np.sin(a) + (xx - 0.5) * np.cos(a), 0, 1)
        light = light * (rng.uniform(0.25, 0.4) + rng.uniform(1.3, 1.7) * along ** 2)[..., None]
    elif lighting == "night":
        light = light * rng.uniform(0.1, 0.2) * _CASTS[0]
    elif lighting == "bright":
        light = light * rng.uniform(1.25, 1.5)
    elif lighting == "dim":
        light = light * rng.uniform(0.3, 0.55)
    elif lighting == "coloured":
        strength = rng.uniform(0.6, 1.0)
        light = light * (1 + strength * (_CASTS[rng.integers(len(_CASTS))] - 1))
    img = albedo * light
    if lighting in ("glare", "hot_reflection"):
        # Soft specular highlights: white glare, or orange reflections of hot metal nearby.
        colour = (np.array([1.0, 0.98, 0.95]) if lighting == "glare"
                  else np.array([1.0, 0.55, 0.2]) * rng.uniform(0.8, 1.0, 3))
        for _ in range(rng.integers(1, 3)):
            spot = _blob_mask(yy, xx, *rng.uniform(0.15, 0.85, 2), rng.uniform(0.03, 0.08),
                              rng.uniform(0.04, 0.15), rng.uniform(0, np.pi))
            img = img + rng.uniform(0.4, 0.8) * spot[..., None] * colour
    # Molten metal emits light: drawn after the lighting, so it glows in the dark too.
    metal_area = 0.0
    if spill:
        area = np.exp(rng.uniform(np.log(settings.min_spill_area), np.log(settings.max_spill_area)))
        metal = _spill_mask(rng, yy, xx, cy, cx, radius, area, n)
        heat = gaussian_filter(metal.astype(float), n / 128)                # hot core, cooler edges
        glow = gaussian_filter(metal.astype(float), n / 40)
        hot = np.array([1.0, 0.95, 0.7]) * heat[..., None] + np.array([1.0, 0.5, 0.08]) * (1 - heat[..., None])
        crust = 1 - 0.25 * np.clip(_smooth_noise(rng, n, n / 85), 0, None)[..., None]
        img = np.where(metal[..., None], hot * crust, img) + 0.35 * glow[..., None] * np.array([1.0, 0.45, 0.1])
        metal_area = float(metal.mean())
    # Smoke or steam: a translucent grey veil.
    smoke = bool(rng.random() < settings.smoke_probability)
    if smoke:
        veil = np.clip(0.5 + 0.5 * _smooth_noise(rng, n, n / 10), 0, 1) * rng.uniform(0.2, 0.45)
        img = img * (1 - veil[..., None]) + rng.uniform(0.55, 0.85) * veil[..., None]
    img = img + rng.normal(0, rng.uniform(0.005, 0.03), img.shape)
    return (np.clip(img, 0, 1) * 255).round().astype(np.uint8), lighting, smoke, metal_area


def _generate(settings: WellSettings) -> dict[str, np.ndarray]:
    n = settings.n_images
    labels = np.arange(n) % 2                              # balanced: n // 2 spills
    labels = np.random.default_rng(settings.seed).permutation(labels)
    images = np.empty((n, settings.size, settings.size, 3), np.uint8)
    lighting, smoke, area = [], np.zeros(n, bool), np.zeros(n)
    for i in range(n):
        rng = np.random.default_rng([settings.seed, i])
        images[i], light, smoke[i], area[i] = _draw(rng, settings.size, bool(labels[i]), settings)
        lighting.append(light)
    return {"images": images, "labels": labels, "lighting": np.array(lighting), "smoke": smoke,
            "spill_area": area}


def generate_wells(settings: WellSettings = WellSettings(), cache: bool = True, cache_dir=None) -> WellImages:
    """The well images for ``settings``, from the cache (``cache_dir``, default data/cache) when
    drawn before."""
    if cache:
        key = {"generator": "wells", "version": GENERATOR_VERSION, **asdict(settings)}
        if settings.lighting == LIGHTING and settings.lighting_p == LIGHTING_P:   # keys of earlier caches
            key.pop("lighting"), key.pop("lighting_p")
        arrays = cached_arrays("wells", key, lambda: _generate(settings), cache_dir)
    else:
        arrays = _generate(settings)
    return WellImages(images=arrays["images"], labels=arrays["labels"].astype(int),
                      lighting=arrays["lighting"].astype(str), smoke=arrays["smoke"].astype(bool),
                      spill_area=arrays["spill_area"].astype(float))
