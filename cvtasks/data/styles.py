"""Styles tables and their avatars: our ground-truth style distribution rendered with
py-avataaars, a user's own CSV + avatar folder, and Google's Cartoon Set.

Every source gives a ``StyleData``: a table (one row per person, one column per attribute,
string values), its schema (the options of each attribute, including the ones no row uses)
and, when there are images, a uint8 stack (n, size, size, 3) in the rows' order.
"""
from __future__ import annotations

import csv
import hashlib
import io
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from PIL import Image

from cvtasks.cache import cached_arrays
from cvtasks.models.bayesnet import BayesNet, Schema, encode

NONE = "none"   # the hair colour of a bald head or a hat; the shirt colour under a blazer
RENDER_SIZE = 280   # py-avataaars' native size: rendered there, then downscaled
BACKGROUND = (226, 218, 240)   # a lavender no avatar part uses, so white clothes stay visible
RENDERER_VERSION = 1   # bump when the rendering below changes, so cached avatars are rebuilt


@dataclass
class StyleData:
    table: pd.DataFrame
    schema: dict[str, tuple[str, ...]]
    images: np.ndarray | None = None
    source: str = ""

    def __len__(self) -> int:
        return len(self.table)


# --- our ground truth ----------------------------------------------------------------------
# Options are py-avataaars enum names in lower case, so that a row renders directly.
# Each entry: option -> probability (parent's option -> {option: probability} for a child).
_HAIRSTYLE = {
    "no_hair": 0.08, "hat": 0.05, "winter_hat1": 0.03, "hijab": 0.03,
    "long_hair_straight": 0.14, "long_hair_curly": 0.09, "long_hair_bob": 0.08,
    "long_hair_fro": 0.06, "long_hair_mia_wallace": 0.02, "short_hair_short_flat": 0.18,
    "short_hair_short_curly": 0.09, "short_hair_dreads_01": 0.06, "short_hair_the_caesar": 0.09,
}
HAIR_COLOURS = ("black", "brown_dark", "brown", "auburn", "blonde", "blonde_golden", "red",
                "platinum", "silver_gray", "pastel_pink", NONE)
_HAIR_COMMON = {"black": 0.25, "brown_dark": 0.2, "brown": 0.18, "auburn": 0.07, "blonde": 0.1,
                "blonde_golden": 0.07, "red": 0.04, "platinum": 0.03, "silver_gray": 0.04,
                "pastel_pink": 0.02}
_HAIR_AFRO = {"black": 0.6, "brown_dark": 0.25, "brown": 0.1, "pastel_pink": 0.03, "red": 0.02}
_HAIR_CURLY = {"auburn": 0.25, "red": 0.15, "brown": 0.2, "blonde": 0.15, "black": 0.15, "brown_dark": 0.1}
_HAIR_SHORT = {"black": 0.3, "brown_dark": 0.2, "brown": 0.15, "blonde": 0.1, "silver_gray": 0.2,
               "platinum": 0.05}
_HAIR_BY_STYLE = {
    "no_hair": {NONE: 1.0}, "hat": {NONE: 1.0}, "winter_hat1": {NONE: 1.0}, "hijab": {NONE: 1.0},
    "long_hair_straight": _HAIR_COMMON, "long_hair_bob": _HAIR_COMMON,
    "long_hair_curly": _HAIR_CURLY, "short_hair_short_curly": _HAIR_CURLY,
    "long_hair_fro": _HAIR_AFRO, "short_hair_dreads_01": _HAIR_AFRO,
    "long_hair_mia_wallace": {"black": 0.7, "pastel_pink": 0.3},
    "short_hair_short_flat": _HAIR_SHORT, "short_hair_the_caesar": _HAIR_SHORT,
}
_ACCESSORY = {"default": 0.68, "prescription_01": 0.1, "prescription_02": 0.08, "round": 0.06,
              "sunglasses": 0.045, "wayfarers": 0.03, "kurt": 0.005}
_CLOTHES = {"blazer_shirt": 0.1, "blazer_sweater": 0.06, "collar_sweater": 0.1, "graphic_shirt": 0.12,
            "hoodie": 0.16, "overall": 0.04, "shirt_crew_neck": 0.18, "shirt_scoop_neck": 0.12,
            "shirt_v_neck": 0.12}
CLOTHES_COLOURS = ("black", "blue_01", "blue_02", "blue_03", "gray_01", "gray_02", "heather",
                   "pastel_blue", "pastel_green", "pastel_orange", "pastel_red", "pastel_yellow",
                   "pink", "red", "white", NONE)
_COLOUR_DARK = {"black": 0.25, "heather": 0.25, "blue_03": 0.2, "gray_02": 0.15, "blue_02": 0.1, "red": 0.05}
_COLOUR_BRIGHT = {"blue_01": 0.14, "blue_02": 0.1, "red": 0.1, "pink": 0.08, "pastel_blue": 0.08,
                  "pastel_green": 0.08, "pastel_orange": 0.05, "pastel_red": 0.07, "pastel_yellow": 0.05,
                  "white": 0.08, "gray_01": 0.07, "black": 0.05, "heather": 0.05}
_COLOUR_BY_CLOTHES = {
    "blazer_shirt": {NONE: 1.0}, "blazer_sweater": {NONE: 1.0},   # a blazer has its own colour
    "collar_sweater": _COLOUR_DARK, "overall": {"blue_01": 0.4, "blue_02": 0.3, "blue_03": 0.2, "pastel_blue": 0.1},
    "graphic_shirt": _COLOUR_BRIGHT, "hoodie": _COLOUR_BRIGHT, "shirt_crew_neck": _COLOUR_BRIGHT,
    "shirt_scoop_neck": _COLOUR_BRIGHT, "shirt_v_neck": _COLOUR_BRIGHT,
}
_SKIN = {"pale": 0.2, "light": 0.3, "tanned": 0.12, "yellow": 0.08, "brown": 0.15, "dark_brown": 0.1, "black": 0.05}

STYLE_PARENTS = {"hair_colour": "hairstyle", "clothes_colour": "clothes"}   # the true dependencies


def _vector(probs: dict[str, float], options: tuple[str, ...]) -> np.ndarray:
    v = np.array([probs.get(o, 0.0) for o in options])
    return v / v.sum()


def ground_truth() -> BayesNet:
    """Our known style distribution: hair colour depends on hairstyle, clothes colour on the
    clothes; a bald head or a hat has no hair colour, a blazer no shirt colour."""
    schema = {"hairstyle": tuple(_HAIRSTYLE), "hair_colour": HAIR_COLOURS, "accessory": tuple(_ACCESSORY),
              "clothes": tuple(_CLOTHES), "clothes_colour": CLOTHES_COLOURS, "skin": tuple(_SKIN)}
    tables = {
        "hairstyle": _vector(_HAIRSTYLE, schema["hairstyle"]),
        "hair_colour": np.stack([_vector(_HAIR_BY_STYLE[s], HAIR_COLOURS) for s in schema["hairstyle"]]),
        "accessory": _vector(_ACCESSORY, schema["accessory"]),
        "clothes": _vector(_CLOTHES, schema["clothes"]),
        "clothes_colour": np.stack([_vector(_COLOUR_BY_CLOTHES[c], CLOTHES_COLOURS) for c in schema["clothes"]]),
        "skin": _vector(_SKIN, schema["skin"]),
    }
    parents = {a: STYLE_PARENTS.get(a) for a in schema}
    return BayesNet(schema, parents, tables)


def sample_styles(n: int, seed: int) -> pd.DataFrame:
    """The embedded styles table: n people drawn from the ground truth, deterministic by seed."""
    if n < 1:
        raise ValueError(f"n = {n}: need at least one person")
    return ground_truth().sample_table(n, np.random.default_rng(seed))


# --- rendering ---------------------------------------------------------------------------------
def _enum(enum_type, value: str, attr: str):
    try:
        return enum_type[value.upper()]
    except KeyError:
        raise ValueError(f"{attr} = {value!r} is not a py-avataaars {enum_type.__name__} "
                         f"(one of {[e.name.lower() for e in enum_type]})") from None


@contextmanager
def _shared_template_environment():
    """py-avataaars builds a new jinja2 Environment, and so recompiles every SVG template, for
    each avatar (~85% of its time). Within this block it gets one shared Environment; the
    package's module attribute is restored afterwards."""
    import py_avataaars as pa

    original, shared = pa.Environment, []

    def environment(**kwargs):
        if not shared:
            shared.append(original(**kwargs))
        return shared[0]

    pa.Environment = environment
    try:
        yield
    finally:
        pa.Environment = original


def render_style(style: dict[str, str], size: int) -> np.ndarray:
    """One avatar as uint8 (size, size, 3) on the background colour. Attributes the table
    lacks keep the package's defaults; 'none' leaves the package's default (not drawn)."""
    import py_avataaars as pa

    kwargs = {"style": pa.AvatarStyle.TRANSPARENT, "mouth_type": pa.MouthType.SMILE,
              "eye_type": pa.EyesType.DEFAULT, "eyebrow_type": pa.EyebrowType.DEFAULT}
    fields = {"hairstyle": ("top_type", pa.TopType), "hair_colour": ("hair_color", pa.HairColor),
              "accessory": ("accessories_type", pa.AccessoriesType), "clothes": ("clothe_type", pa.ClotheType),
              "clothes_colour": ("clothe_color", pa.Color), "skin": ("skin_color", pa.SkinColor)}
    for attr, (arg, enum_type) in fields.items():
        value = style.get(attr)
        if value is not None and value != NONE:
            kwargs[arg] = _enum(enum_type, str(value), attr)
    png = pa.PyAvataaar(**kwargs).render_png()
    return _flatten(Image.open(io.BytesIO(png)), size)


def _flatten(image: Image.Image, size: int) -> np.ndarray:
    """RGBA (or any mode) onto the background, downscaled with antialiasing to size x size."""
    image = image.convert("RGBA")
    background = Image.new("RGBA", image.size, (*BACKGROUND, 255))
    rgb = Image.alpha_composite(background, image).convert("RGB")
    if rgb.size != (size, size):
        rgb = rgb.resize((size, size), Image.LANCZOS)
    return np.asarray(rgb, dtype=np.uint8)


def table_digest(table: pd.DataFrame) -> str:
    return hashlib.sha256(table.to_csv(index=False).encode()).hexdigest()[:16]


def render_avatars(table: pd.DataFrame, size: int, cache_dir: str | Path | None = None) -> np.ndarray:
    """Every row rendered (~30 per second with the shared templates), cached by the table's content and the size."""
    def compute():
        with _shared_template_environment():
            return {"images": np.stack([render_style(row, size) for row in table.to_dict("records")])}

    key = {"table": table_digest(table), "n": len(table), "size": size, "renderer": RENDERER_VERSION}
    return cached_arrays("avatars", key, compute, cache_dir)["images"]


def embedded_styles(n: int, size: int, seed: int, cache_dir: str | Path | None = None) -> StyleData:
    table = sample_styles(n, seed)
    schema = dict(ground_truth().schema)
    return StyleData(table, schema, render_avatars(table, size, cache_dir), source=f"embedded (n={n}, seed={seed})")


# --- a user's own table ------------------------------------------------------------------------
IMAGE_COLUMN = "image"


def load_styles_csv(csv_path: str | Path, avatars_dir: str | Path | None, size: int,
                    schema: Schema | None = None) -> StyleData:
    """A CSV with one column per attribute and, with ``avatars_dir``, an ``image`` column naming
    each person's avatar file in that folder. Options come from ``schema`` when given (so
    options nobody chose still count), else from the values present."""
    csv_path = Path(csv_path)
    if not csv_path.is_file():
        raise FileNotFoundError(f"styles table {csv_path} does not exist")
    table = pd.read_csv(csv_path, dtype=str, keep_default_na=False)
    if table.empty:
        raise ValueError(f"styles table {csv_path} has no rows")
    attrs = [c for c in table.columns if c != IMAGE_COLUMN]
    if schema is None:
        schema = {a: tuple(sorted(table[a].unique())) for a in attrs}
    schema = {a: tuple(map(str, o)) for a, o in schema.items()}
    images = None
    if avatars_dir is not None:
        if IMAGE_COLUMN not in table.columns:
            raise KeyError(f"{csv_path} needs an {IMAGE_COLUMN!r} column naming each avatar file in {avatars_dir}")
        folder = Path(avatars_dir)
        missing = [f for f in table[IMAGE_COLUMN] if not (folder / f).is_file()]
        if missing:
            raise FileNotFoundError(f"{len(missing)} avatar file(s) listed in {csv_path} are missing from "
                                    f"{folder}, e.g. {missing[:3]}")
        images = np.stack([_flatten(Image.open(folder / f), size) for f in table[IMAGE_COLUMN]])
    encode(table, schema)   # every value must be one of its attribute's options
    return StyleData(table[list(schema)].reset_index(drop=True), schema, images, source=str(csv_path))


# --- Google's Cartoon Set ------------------------------------------------------------------------
def read_cartoonset_csv(path: str | Path) -> dict[str, tuple[int, int]]:
    """One Cartoon Set description: rows ``"attribute", value_index, n_variants``."""
    out = {}
    with open(path, newline="", encoding="utf-8") as fh:
        for line_no, row in enumerate(csv.reader(fh, skipinitialspace=True), 1):
            if not row:
                continue
            if len(row) != 3:
                raise ValueError(f"{path}:{line_no}: expected 'attribute, value_index, n_variants', got {row}")
            name, value, n_variants = row[0].strip(), int(row[1]), int(row[2])
            if not 0 <= value < n_variants:
                raise ValueError(f"{path}:{line_no}: {name} = {value} outside 0..{n_variants - 1}")
            out[name] = (value, n_variants)
    return out


def load_cartoonset(root: str | Path, size: int, limit: int | None = None) -> StyleData:
    """Google's Cartoon Set (cartoonset10k / 100k): ``<name>.png`` + ``<name>.csv`` per image,
    possibly in sub-folders. Options are the value indices ``0 .. n_variants-1`` as strings."""
    root = Path(root)
    if not root.is_dir():
        raise FileNotFoundError(f"Cartoon Set folder {root} does not exist (download it from "
                                "https://google.github.io/cartoonset/)")
    pngs = sorted(p for p in root.rglob("*.png") if p.with_suffix(".csv").is_file())
    if not pngs:
        raise FileNotFoundError(f"no <name>.png with a matching <name>.csv under {root}")
    pngs = pngs[:limit] if limit else pngs
    rows, schema = [], {}
    for png in pngs:
        desc = read_cartoonset_csv(png.with_suffix(".csv"))
        for name, (_, n_variants) in desc.items():
            if schema.setdefault(name, n_variants) != n_variants:
                raise ValueError(f"{png.with_suffix('.csv')}: {name} has {n_variants} variants, others {schema[name]}")
        rows.append({name: str(v) for name, (v, _) in desc.items()})
    table = pd.DataFrame(rows, columns=list(schema))
    if table.isna().any().any():
        raise ValueError(f"Cartoon Set descriptions under {root} do not all list the same attributes")
    images = np.stack([_flatten(Image.open(p), size) for p in pngs])
    schema = {name: tuple(str(i) for i in range(k)) for name, k in schema.items()}
    return StyleData(table, schema, images, source=f"cartoonset {root}")


def load_styles(cfg) -> StyleData:
    """The task's data: the user's CSV (+ avatars) when configured, else the embedded default."""
    if cfg.styles_csv is not None:
        return load_styles_csv(cfg.styles_csv, cfg.avatars_dir, cfg.avatar_size)
    return embedded_styles(cfg.n_people, cfg.avatar_size, cfg.seed, cfg.paths.cache)
