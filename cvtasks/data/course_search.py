"""Reader of the course's image-search dataset layout (the Flickr8k expert-annotation scheme).

    train_dataset.csv       header image,query_id,query_text   (the annotated training pairs)
    ExpertAnnotations.tsv   no header: image, query_id, expert_1, expert_2, expert_3 (votes 1..4)
    CrowdAnnotations.tsv    no header: image, query_id, share, n_yes, n_no
    train_images/           the training images
    test_queries.csv        '|'-separated: query_id|query_text|image (the query's own image)
    test_images/            the search gallery
    test_annotations.tsv    optional, not in the course: expert votes for test pairs, same
                            columns as ExpertAnnotations.tsv (our Open Clip Art builder writes it)
    val_images/, val_queries.csv, val_annotations.tsv
                            optional, not in the course: a validation gallery in the test files'
                            formats (our builder writes it; without it validation is carved
                            from the training pairs)

Query files may carry a fourth column ``kind``: ``new`` (the gallery holds the query's own
image), ``seen`` (a training text searching new images) or ``nomatch`` (nothing in the gallery
fits); without it every query is ``new``.

A query id is ``<image file>#<n>``: the n-th description of that image. Experts vote 1 (does
not fit at all) to 4 (fits fully). Rows whose image file is missing are dropped and counted.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
from PIL import Image

EXPERT_COLUMNS = ["image", "query_id", "expert_1", "expert_2", "expert_3"]
CROWD_COLUMNS = ["image", "query_id", "share", "n_yes", "n_no"]
TRAIN_COLUMNS = ["image", "query_id", "query_text"]
TEST_COLUMNS = ["query_id", "query_text", "image"]
KINDS = ("new", "seen", "nomatch")
REQUIRED_FILES = ("train_dataset.csv", "ExpertAnnotations.tsv", "CrowdAnnotations.tsv",
                  "train_images", "test_queries.csv", "test_images")


class DatasetLayoutError(ValueError):
    """A file of the course layout is missing or has the wrong columns."""


@dataclass
class CourseSearchData:
    """The course dataset, read as is, with the training pairs joined to their votes."""

    root: Path
    pairs: pd.DataFrame          # image, query_id, query_text, expert_1..3, share, n_yes, n_no
    test_queries: pd.DataFrame   # query_id, query_text, image
    test_votes: pd.DataFrame | None   # image, query_id, expert_1..3 (optional)
    train_images: list[str]      # files in train_images/ used by the pairs
    test_images: list[str]       # every file in test_images/
    dropped: dict[str, int] = field(default_factory=dict)
    val_queries: pd.DataFrame | None = None   # as test_queries, when the folder has a validation gallery
    val_votes: pd.DataFrame | None = None
    val_images: list[str] = field(default_factory=list)

    def image_path(self, name: str, split: str = "train") -> Path:
        return self.root / f"{split}_images" / name

    def summary(self) -> dict[str, int]:
        return {"train images": len(self.train_images), "train queries": self.pairs.query_id.nunique(),
                "annotated pairs": len(self.pairs), "pairs with crowd votes": int(self.pairs.share.notna().sum()),
                "test images": len(self.test_images), "test queries": len(self.test_queries),
                "annotated test pairs": 0 if self.test_votes is None else len(self.test_votes)}


def load_image(path: str | Path, max_side: int | None = None) -> Image.Image:
    """An image as RGB; transparent pixels are composited on white (drawings are black on
    transparent, which a plain RGB conversion would turn black on black)."""
    with Image.open(path) as im:
        im.load()
        if im.mode == "P" and "transparency" in im.info:
            im = im.convert("RGBA")
        if im.mode in ("RGBA", "LA", "PA"):
            im = im.convert("RGBA")
            white = Image.new("RGBA", im.size, (255, 255, 255, 255))
            im = Image.alpha_composite(white, im)
        im = im.convert("RGB")
    if max_side and max(im.size) > max_side:
        im.thumbnail((max_side, max_side), Image.BICUBIC)
    return im


def _read_table(path: Path, columns: list[str], *, sep: str, header: bool) -> pd.DataFrame:
    if not path.exists():
        raise DatasetLayoutError(f"{path} is missing; the course layout needs {', '.join(REQUIRED_FILES)}")
    frame = pd.read_csv(path, sep=sep, header=0 if header else None, dtype=str, keep_default_na=False)
    if header:
        frame = frame.loc[:, [c for c in frame.columns if not str(c).startswith("Unnamed")]]
        missing = [c for c in columns if c not in frame.columns]
        if missing:
            raise DatasetLayoutError(f"{path}: columns {missing} are missing (found {list(frame.columns)})")
        return frame[columns]
    if frame.shape[1] != len(columns):
        raise DatasetLayoutError(f"{path}: expected {len(columns)} columns ({', '.join(columns)}), "
                                 f"found {frame.shape[1]}")
    frame.columns = columns
    return frame


def _numeric(frame: pd.DataFrame, columns: list[str], path: Path) -> pd.DataFrame:
    frame = frame.copy()
    for col in columns:
        values = pd.to_numeric(frame[col], errors="coerce")
        if values.isna().any():
            row = int(np.flatnonzero(values.isna())[0])
            raise DatasetLayoutError(f"{path}: column {col} has a non-number {frame[col].iloc[row]!r} "
                                     f"in row {row + 1}")
        frame[col] = values
    return frame


def _read_test_queries(path: Path) -> pd.DataFrame:
    if not path.exists():
        raise DatasetLayoutError(f"{path} is missing; the course layout needs {', '.join(REQUIRED_FILES)}")
    first = path.read_text(encoding="utf-8").splitlines()[:1]
    has_header = bool(first) and "query_id" in first[0]
    with_kind = has_header and first[0].strip().split("|")[-1] == "kind"
    frame = _read_table(path, TEST_COLUMNS + ["kind"] * with_kind, sep="|", header=has_header)
    if not with_kind:
        frame["kind"] = "new"
    frame["image"] = frame["image"].fillna("").astype(str)
    bad = sorted(set(frame.kind) - set(KINDS))
    if bad:
        raise DatasetLayoutError(f"{path}: query kinds must be {', '.join(KINDS)}; found {bad}")
    return frame


def _image_files(folder: Path) -> set[str]:
    if not folder.is_dir():
        raise DatasetLayoutError(f"{folder} is missing; the course layout needs {', '.join(REQUIRED_FILES)}")
    return {p.name for p in folder.iterdir() if p.is_file() and not p.name.startswith(".")}


def load(root: str | Path) -> CourseSearchData:
    """Read a dataset folder in the course layout; raises DatasetLayoutError naming what is wrong."""
    root = Path(root)
    if not root.is_dir():
        raise DatasetLayoutError(f"dataset folder {root} does not exist")
    train = _read_table(root / "train_dataset.csv", TRAIN_COLUMNS, sep=",", header=True)
    experts = _numeric(_read_table(root / "ExpertAnnotations.tsv", EXPERT_COLUMNS, sep="\t", header=False),
                       EXPERT_COLUMNS[2:], root / "ExpertAnnotations.tsv")
    crowd = _numeric(_read_table(root / "CrowdAnnotations.tsv", CROWD_COLUMNS, sep="\t", header=False),
                     CROWD_COLUMNS[2:], root / "CrowdAnnotations.tsv")
    valid = experts[EXPERT_COLUMNS[2:]].isin([1, 2, 3, 4]).all(axis=1)
    if not valid.all():
        raise DatasetLayoutError(f"ExpertAnnotations.tsv: votes must be 1..4; row "
                                 f"{int(np.flatnonzero(~valid)[0]) + 1} is not")
    test_queries = _read_test_queries(root / "test_queries.csv")
    test_votes_path = root / "test_annotations.tsv"
    test_votes = None
    if test_votes_path.exists():
        test_votes = _numeric(_read_table(test_votes_path, EXPERT_COLUMNS, sep="\t", header=False),
                              EXPERT_COLUMNS[2:], test_votes_path)

    texts = train.drop_duplicates("query_id").set_index("query_id").query_text
    pairs = experts.merge(crowd, on=["image", "query_id"], how="left")
    pairs["query_text"] = pairs.query_id.map(texts)
    train_files, test_files = _image_files(root / "train_images"), _image_files(root / "test_images")
    dropped = {"pairs without a query text": int(pairs.query_text.isna().sum())}
    pairs = pairs[pairs.query_text.notna()]
    has_image = pairs.image.isin(train_files)
    dropped["pairs whose image is missing"] = int((~has_image).sum())
    pairs = pairs[has_image].reset_index(drop=True)
    pairs = pairs[["image", "query_id", "query_text", *EXPERT_COLUMNS[2:], *CROWD_COLUMNS[2:]]]
    in_gallery = test_queries.image.isin(test_files) | (test_queries.kind != "new")
    dropped["test queries whose image is missing"] = int((~in_gallery).sum())
    test_queries = test_queries[in_gallery].reset_index(drop=True)
    if pairs.empty:
        raise DatasetLayoutError(f"{root}: no annotated pair has both a query text and an image file")
    data = CourseSearchData(root=root, pairs=pairs, test_queries=test_queries, test_votes=test_votes,
                            train_images=sorted(set(pairs.image)), test_images=sorted(test_files),
                            dropped=dropped)
    if (root / "val_queries.csv").exists():
        data.val_images = sorted(_image_files(root / "val_images"))
        data.val_queries = _read_test_queries(root / "val_queries.csv")
        data.val_votes = _numeric(_read_table(root / "val_annotations.tsv", EXPERT_COLUMNS, sep="\t", header=False),
                                  EXPERT_COLUMNS[2:], root / "val_annotations.tsv")
    return data
