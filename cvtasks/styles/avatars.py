"""Avatar generator from the pixels of an avatar collection.

- a colour palette (k-means over the collection's pixels) and, for every pixel, a
  categorical distribution over the palette;
- (a) every pixel sampled independently from its distribution (the assignment's method);
- (b) the per-pixel distribution conditioned on a sampled style: for each attribute, the
  distribution of the avatars that share the style's value, with the global distribution as
  the Dirichlet prior; the attributes are combined as independent evidence (naive Bayes):
  P(c | style) ∝ P(c) ∏_a P(c | a = s_a) / P(c);
- (c) a structured method: a linear-Gaussian factor model. Ridge regression maps the style
  (one-hot attributes plus one-hot parent-child pairs, so hair colour can depend on the
  hairstyle's shape) to the mean avatar; low-rank Gaussian noise in the residuals' principal
  components adds variation; the result is snapped to the palette.
- measurements: distance to the nearest real avatar, diversity, and recognisability: one
  classifier per attribute, trained on real avatars, predicts the attributes of generated
  ones, and its agreement with the conditioning style is reported.
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
from PIL import Image
from sklearn.cluster import MiniBatchKMeans
from sklearn.decomposition import PCA
from sklearn.linear_model import LogisticRegression, Ridge
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler

import config
from cvtasks.models.bayesnet import BayesNet, Schema

GLOBAL_PSEUDO_COUNT = 0.01   # keeps log P(c) finite where a colour never occurs at a pixel
METHODS = ("a_independent", "b_conditional", "c_factor")


# --- palette and per-pixel distributions ------------------------------------------------------------
def fit_palette(images: np.ndarray, k: int, seed: int, max_pixels: int = 200_000) -> np.ndarray:
    """k palette colours (k, 3) uint8: k-means over a sample of the collection's pixels."""
    pixels = images.reshape(-1, 3).astype(np.float32)
    rng = np.random.default_rng(seed)
    if len(pixels) > max_pixels:
        pixels = pixels[rng.choice(len(pixels), max_pixels, replace=False)]
    km = MiniBatchKMeans(n_clusters=k, random_state=seed, n_init=3, batch_size=4096).fit(pixels)
    return np.clip(np.rint(km.cluster_centers_), 0, 255).astype(np.uint8)


def quantize(images: np.ndarray, palette: np.ndarray, chunk: int = 1 << 16) -> np.ndarray:
    """Index (..., H, W) of the nearest palette colour of every pixel."""
    flat = images.reshape(-1, 3).astype(np.float32)
    pal = palette.astype(np.float32)
    out = np.empty(len(flat), dtype=np.uint8)
    for i in range(0, len(flat), chunk):
        d = ((flat[i:i + chunk, None, :] - pal[None]) ** 2).sum(-1)
        out[i:i + chunk] = d.argmin(1)
    return out.reshape(images.shape[:-1])


def pixel_counts(labels: np.ndarray, k: int) -> np.ndarray:
    """(H, W, k) counts of each palette colour at each pixel over a stack (n, H, W)."""
    n, h, w = labels.shape
    flat = labels.reshape(n, h * w)
    out = np.zeros((h * w, k))
    for c in range(k):
        out[:, c] = (flat == c).sum(0)
    return out.reshape(h, w, k)


def distinct_colours(images: np.ndarray) -> int:
    """How many exact RGB colours the collection uses (antialiasing adds many)."""
    return len(np.unique(images.reshape(-1, 3), axis=0))


@dataclass
class PixelModel:
    """The palette, the global per-pixel distributions, and per (attribute, option) counts."""

    palette: np.ndarray
    global_probs: np.ndarray                       # (H, W, k)
    option_counts: dict[str, np.ndarray]           # attr -> (n_options, H, W, k)
    option_n: dict[str, np.ndarray]                # attr -> (n_options,) avatars per option
    schema: dict[str, tuple[str, ...]]
    pseudo_count: float

    def conditional(self, style_codes: Sequence[int], attributes: Sequence[str] | None = None) -> np.ndarray:
        """P(colour | style) per pixel, (H, W, k), conditioning on ``attributes`` (default all)."""
        attributes = list(self.schema) if attributes is None else list(attributes)
        log_global = np.log(self.global_probs)
        logp = log_global.copy()
        for attr in attributes:
            v = style_codes[list(self.schema).index(attr)]
            post = (self.option_counts[attr][v] + self.pseudo_count * self.global_probs) / (
                self.option_n[attr][v] + self.pseudo_count)
            logp += np.log(post) - log_global
        logp -= logp.max(-1, keepdims=True)
        p = np.exp(logp)
        return p / p.sum(-1, keepdims=True)


def fit_pixel_model(images: np.ndarray, codes: np.ndarray, schema: Schema, palette: np.ndarray,
                    pseudo_count: float) -> PixelModel:
    k = len(palette)
    labels = quantize(images, palette)
    total = pixel_counts(labels, k)
    global_probs = (total + GLOBAL_PSEUDO_COUNT) / (total + GLOBAL_PSEUDO_COUNT).sum(-1, keepdims=True)
    option_counts, option_n = {}, {}
    for j, (attr, options) in enumerate(schema.items()):
        option_counts[attr] = np.stack([pixel_counts(labels[codes[:, j] == v], k) for v in range(len(options))])
        option_n[attr] = np.bincount(codes[:, j], minlength=len(options)).astype(float)
    return PixelModel(palette, global_probs, option_counts, option_n, dict(schema), pseudo_count)


def sample_pixels(probs: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """One colour index per pixel, each drawn independently from its (H, W, k) distribution."""
    cdf = np.cumsum(probs, -1)
    u = rng.random(probs.shape[:-1] + (1,)) * cdf[..., -1:]
    return np.minimum((u >= cdf).sum(-1), probs.shape[-1] - 1)


# --- the three generators ---------------------------------------------------------------------------------
def generate_independent(model: PixelModel, n: int, rng: np.random.Generator) -> np.ndarray:
    """(a): every pixel from its global distribution."""
    return np.stack([model.palette[sample_pixels(model.global_probs, rng)] for _ in range(n)])


def generate_conditional(model: PixelModel, styles: np.ndarray, rng: np.random.Generator,
                         attributes: Sequence[str] | None = None) -> np.ndarray:
    """(b): every pixel from its distribution given the style's attributes."""
    return np.stack([model.palette[sample_pixels(model.conditional(s, attributes), rng)] for s in styles])


@dataclass
class FactorModel:
    """(c): style -> mean avatar by ridge regression; residual variation in a few components."""

    encoder: OneHotEncoder
    ridge: Ridge
    pca: PCA
    shape: tuple[int, ...]
    palette: np.ndarray
    noise_scale: float

    def generate(self, features: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        mean = self.ridge.predict(self.encoder.transform(features))
        z = rng.standard_normal((len(features), self.pca.n_components_)) * np.sqrt(self.pca.explained_variance_)
        x = mean + self.noise_scale * self.pca.inverse_transform(z) - self.pca.mean_
        rgb = np.clip(x, 0, 1).reshape(-1, *self.shape) * 255
        return self.palette[quantize(rgb, self.palette)]


def style_features(codes: np.ndarray, schema: Schema, parents: Mapping[str, str | None]) -> np.ndarray:
    """Each attribute's code plus one column per dependency (the parent-child pair)."""
    col = {a: j for j, a in enumerate(schema)}
    pairs = [codes[:, col[p]] * len(schema[c]) + codes[:, col[c]] for c, p in parents.items() if p is not None]
    return np.column_stack([codes, *pairs]) if pairs else codes


def fit_factor_model(images: np.ndarray, codes: np.ndarray, schema: Schema, parents: Mapping[str, str | None],
                     palette: np.ndarray, cfg: config.StylesConfig) -> FactorModel:
    """Method (c): ``cfg.factor_components``, ``factor_ridge_alpha``, ``factor_noise_scale``."""
    n_components, ridge_alpha, noise_scale, seed = (cfg.factor_components, cfg.factor_ridge_alpha,
                                                    cfg.factor_noise_scale, cfg.seed)
    x = images.reshape(len(images), -1).astype(np.float32) / 255
    encoder = OneHotEncoder(handle_unknown="ignore", sparse_output=False).fit(style_features(codes, schema, parents))
    ridge = Ridge(alpha=ridge_alpha).fit(encoder.transform(style_features(codes, schema, parents)), x)
    residual = x - ridge.predict(encoder.transform(style_features(codes, schema, parents)))
    pca = PCA(n_components=min(n_components, len(x) - 1), random_state=seed).fit(residual)
    return FactorModel(encoder, ridge, pca, images.shape[1:], palette, noise_scale)


# --- measurements --------------------------------------------------------------------------------------
def _flat(images: np.ndarray) -> np.ndarray:
    return images.reshape(len(images), -1).astype(np.float32) / 255


def nearest_real_distance(generated: np.ndarray, real: np.ndarray) -> np.ndarray:
    """RMSE (0..1 scale) of each generated avatar to its nearest real avatar."""
    g, r = _flat(generated), _flat(real)
    d2 = (g ** 2).sum(1)[:, None] + (r ** 2).sum(1)[None] - 2 * g @ r.T
    return np.sqrt(np.maximum(d2.min(1), 0) / g.shape[1])


def diversity(images: np.ndarray) -> float:
    """Mean pairwise RMSE between avatars (0..1 scale)."""
    x = _flat(images)
    d2 = (x ** 2).sum(1)[:, None] + (x ** 2).sum(1)[None] - 2 * x @ x.T
    iu = np.triu_indices(len(x), 1)
    return float(np.sqrt(np.maximum(d2[iu], 0) / x.shape[1]).mean())


def _downscale(images: np.ndarray, size: int) -> np.ndarray:
    small = [np.asarray(Image.fromarray(im).resize((size, size), Image.BILINEAR)) for im in images]
    return np.stack(small).reshape(len(images), -1).astype(np.float32) / 255


@dataclass
class AttributeClassifier:
    """One classifier per attribute, on downscaled pixels of real avatars."""

    models: dict[str, Pipeline]
    schema: dict[str, tuple[str, ...]]
    size: int

    def predict(self, images: np.ndarray) -> np.ndarray:
        x = _downscale(images, self.size)
        return np.column_stack([self.models[a].predict(x) for a in self.schema])

    def agreement(self, images: np.ndarray, codes: np.ndarray) -> dict[str, float]:
        pred = self.predict(images)
        return {a: float((pred[:, j] == codes[:, j]).mean()) for j, a in enumerate(self.schema)}


def fit_classifier(images: np.ndarray, codes: np.ndarray, schema: Schema, cfg: config.StylesConfig) -> AttributeClassifier:
    """PCA then logistic regression per attribute, on avatars downscaled to ``cfg.classifier_size``."""
    size, seed = cfg.classifier_size, cfg.seed
    x = _downscale(images, size)
    pca = PCA(n_components=min(cfg.classifier_components, len(x) - 1), random_state=seed).fit(x)
    models = {}
    for j, attr in enumerate(schema):
        y = codes[:, j]
        if len(np.unique(y)) < 2:
            raise ValueError(f"attribute {attr!r} takes one value in the training avatars; nothing to classify")
        models[attr] = make_pipeline(pca, StandardScaler(), LogisticRegression(C=cfg.classifier_c, max_iter=500,
                                                                                random_state=seed))
        models[attr].fit(x, y)
    return AttributeClassifier(models, dict(schema), size)


def measure(generated: np.ndarray, styles: np.ndarray, real: np.ndarray, classifier: AttributeClassifier) -> dict[str, float]:
    out = {"nn_distance": float(nearest_real_distance(generated, real).mean()), "diversity": diversity(generated)}
    agree = classifier.agreement(generated, styles)
    out.update({f"recognisability/{a}": v for a, v in agree.items()})
    out["recognisability"] = float(np.mean(list(agree.values())))
    return out


# --- the avatar part of the task ---------------------------------------------------------------------------
@dataclass
class AvatarResult:
    generated: dict[str, np.ndarray]       # method -> (n, H, W, 3)
    styles: np.ndarray                     # the conditioning styles (codes) of the generated avatars
    table: pd.DataFrame                    # one row per method: measurements
    heldout_accuracy: dict[str, float]     # the classifier on held-out real avatars (its ceiling)
    real_nn_distance: float                # held-out real avatars to their nearest training avatar
    palette: np.ndarray
    pixel_model: PixelModel
    factor_model: FactorModel
    classifier: AttributeClassifier
    train_index: np.ndarray


def avatar_experiment(images: np.ndarray, codes: np.ndarray, schema: Schema, parents: Mapping[str, str | None],
                      style_model: BayesNet, train: np.ndarray, test: np.ndarray,
                      cfg: config.StylesConfig) -> AvatarResult:
    """Fit the palette, the pixel model and the factor model on the ``train`` avatars, generate
    ``cfg.n_generated`` avatars per method for styles sampled from ``style_model``, and measure;
    the ``test`` avatars give the classifier's ceiling and the copy distance of real avatars."""
    n_generated, seed = cfg.n_generated, cfg.seed
    palette = fit_palette(images[train], cfg.palette_size, seed)
    pixel_model = fit_pixel_model(images[train], codes[train], schema, palette, cfg.layer_pseudo_count)
    factor = fit_factor_model(images[train], codes[train], schema, parents, palette, cfg)
    classifier = fit_classifier(images[train], codes[train], schema, cfg)
    heldout = classifier.agreement(images[test], codes[test])
    styles = style_model.sample(n_generated, np.random.default_rng(seed + 1))
    gen_rng = np.random.default_rng(seed + 2)
    generated = {
        "a_independent": generate_independent(pixel_model, n_generated, gen_rng),
        "b_conditional": generate_conditional(pixel_model, styles, gen_rng),
        "c_factor": factor.generate(style_features(styles, schema, parents), gen_rng),
    }
    rows = [{"method": m, **measure(g, styles, images[train], classifier)} for m, g in generated.items()]
    rows.append({"method": "real (held out)", **measure(images[test], codes[test], images[train], classifier)})
    return AvatarResult(generated, styles, pd.DataFrame(rows).set_index("method"), heldout,
                        float(nearest_real_distance(images[test], images[train]).mean()), palette,
                        pixel_model, factor, classifier, train)


def conditioning_experiment(result: AvatarResult, schema: Schema, subsets: Mapping[str, Sequence[str]],
                            seed: int) -> pd.DataFrame:
    """Method (b) conditioned on subsets of the attributes: which attributes become visible."""
    rows = []
    for name, attrs in subsets.items():
        gen = generate_conditional(result.pixel_model, result.styles, np.random.default_rng(seed), attrs)
        rows.append({"conditioned on": name, **result.classifier.agreement(gen, result.styles)})
    return pd.DataFrame(rows).set_index("conditioned on")


def palette_experiment(images: np.ndarray, sizes: Sequence[int], seed: int) -> pd.DataFrame:
    """How many palette colours the avatars need: quantisation error per palette size."""
    rows = []
    for k in sizes:
        pal = fit_palette(images, k, seed)
        quant = pal[quantize(images, pal)]
        err = np.sqrt(((quant.astype(np.float32) - images) ** 2).mean()) / 255
        rows.append({"palette size": k, "quantisation RMSE": float(err)})
    return pd.DataFrame(rows).set_index("palette size")
