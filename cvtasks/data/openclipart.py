"""The embedded search dataset: Open Clip Art drawings written out in the course layout.

The Open Clip Art Library (Debian ``openclipart-svg`` + ``openclipart-png``) holds real
drawings with human-written titles, descriptions and keywords. The builder

1. reads every SVG's metadata (``dc:title``, ``dc:description``, keyword ``rdf:li`` tags);
   keeps drawings whose title names the drawing (a title shared by more than
   ``MAX_TITLE_REPEATS`` drawings is a collection name such as "Lemon SVG theme");
2. takes all of them, or ``n_images`` drawn round-robin over the library's folders (subjects)
   so that no folder dominates, and splits them into train and test images;
3. makes queries from each drawing's title (query ``<image>#0``) and, when it says something
   else, its description (``<image>#1``);
4. pairs every training query with its own image, images of the same subject and random
   images, and derives votes from a relevance rule (below): these votes are DERIVED, NOT
   HUMAN; only the texts and drawings are human work.

Relevance of drawing j to the query of drawing q (0..1):
    1                                           when j is q's own drawing
    min(0.75, 0.25 * same category              (top folder, e.g. food)
              + 0.20 * same subject             (leaf folder, e.g. food/fruit)
              + 0.50 * keyword overlap)         (idf-weighted Jaccard of the keyword tags)
Each of three experts votes round(1 + 3 * relevance + bias + noise) clipped to 1..4, with a
leniency bias of their own (normal, sd 0.25) and per-vote noise (sd ``expert_noise``); a crowd
of 3 to 7 people each says "fits" with probability relevance + noise (sd 0.1), clipped.

The output folder is named by a fingerprint of the settings and finished by ``build.json``;
a folder with that file is reused as is, so the build runs once per settings.
"""
from __future__ import annotations

import json
import math
import os
import re
import shutil
import xml.etree.ElementTree as ET
from collections import Counter, defaultdict
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from PIL import Image

import config
from cvtasks.cache import fingerprint
from cvtasks.data.course_search import load_image
from cvtasks.images import ImageRejected, open_checked
from cvtasks.io import atomic_write_text
from cvtasks.runtime import progress_bar

NS = {"dc": "http://purl.org/dc/elements/1.1/", "rdf": "http://www.w3.org/1999/02/22-rdf-syntax-ns#",
      "cc": "http://web.resource.org/cc/"}
RULE_VERSION = 1          # bump when the relevance rule or the file format changes
MAX_TITLE_REPEATS = 3     # a title on more drawings than this names a collection, not a drawing
MAX_RELATED = 0.75        # the best score a drawing other than the query's own can get
MAX_PIXELS = 4_000_000   # the 20 larger PNGs (up to 231 Mpx) would cost seconds and GBs each
IMAGE_SIDE = 256          # drawings are written as white squares of this side
MARGIN = 0.06             # white border, so the encoder's centre crop keeps the whole drawing


@dataclass(frozen=True)
class Drawing:
    key: str                    # path under the library without suffix, e.g. food/fruit/pear_01
    title: str
    description: str
    keywords: tuple[str, ...]

    @property
    def category(self) -> str:
        return self.key.split("/")[0]

    @property
    def subject(self) -> str:
        return self.key.rsplit("/", 1)[0]

    @property
    def file_name(self) -> str:
        return self.key.replace("/", "__") + ".png"


def read_drawing(svg: Path, root: Path) -> Drawing | None:
    """A drawing's metadata, or None when it has no title (or no readable metadata)."""
    try:
        work = ET.parse(svg).find(".//cc:Work", NS)
    except ET.ParseError:
        return None
    if work is None:
        return None
    title = " ".join((work.findtext("dc:title", "", NS) or "").split())
    description = " ".join((work.findtext("dc:description", "", NS) or "").split())
    words = {" ".join((li.text or "").lower().replace("_", " ").split())
             for li in work.findall("dc:subject/rdf:Bag/rdf:li", NS)}
    if not title:
        return None
    key = svg.relative_to(root).with_suffix("").as_posix()
    return Drawing(key, title, description, tuple(sorted(w for w in words if w)))


def _png_fits(png: Path) -> bool:
    """The PNG exists and has at most MAX_PIXELS pixels (read from its header only)."""
    try:
        open_checked(png, MAX_PIXELS).close()
    except (ImageRejected, FileNotFoundError):
        return False
    return True


def scan_library(svg_dir: Path, png_dir: Path) -> list[Drawing]:
    """Titled drawings with a PNG of sensible size, keeping only titles that name one drawing."""
    drawings = [d for svg in sorted(svg_dir.rglob("*.svg"))
                if (d := read_drawing(svg, svg_dir)) is not None and _png_fits(png_dir / f"{d.key}.png")]
    repeats = Counter(d.title.lower() for d in drawings)
    return [d for d in drawings if repeats[d.title.lower()] <= MAX_TITLE_REPEATS]


def pick_subset(drawings: Sequence[Drawing], n: int | None, seed: int) -> list[Drawing]:
    """``n`` drawings taken round-robin over subjects (leaf folders), each shuffled by seed;
    ``None``: all of them."""
    if n is None:
        return sorted(drawings, key=lambda d: d.key)
    rng = np.random.default_rng(seed)
    by_subject: dict[str, list[Drawing]] = defaultdict(list)
    for d in drawings:
        by_subject[d.subject].append(d)
    queues = [[group[i] for i in rng.permutation(len(group))] for _, group in sorted(by_subject.items())]
    picked: list[Drawing] = []
    while len(picked) < n and any(queues):
        for queue in queues:
            if queue and len(picked) < n:
                picked.append(queue.pop())
    if len(picked) < n:
        raise ValueError(f"n_images = {n}: the library has only {len(picked)} usable drawings")
    return sorted(picked, key=lambda d: d.key)


def query_texts(d: Drawing) -> list[str]:
    """The title (less a "Clipart by <author> - " prefix), plus the description when it is a
    different, plain sentence (no e-mail or URL)."""
    title = re.sub(r"^clipart by [^-]+ - ", "", d.title, flags=re.IGNORECASE).replace("_", " ")
    texts = [title]
    desc = d.description
    if (desc and desc.lower() != title.lower() and 3 <= len(desc) <= 200
            and not re.search(r"@|https?:|www\.", desc)):
        texts.append(desc)
    return texts


class RelevanceRule:
    """The documented rule: own drawing 1; else category, subject and keyword overlap."""

    def __init__(self, drawings: Sequence[Drawing]):
        df = Counter(k for d in drawings for k in set(d.keywords))
        n = len(drawings)
        self.idf = {k: math.log((1 + n) / (1 + c)) + 1.0 for k, c in df.items()}

    def keyword_overlap(self, a: Drawing, b: Drawing) -> float:
        union = set(a.keywords) | set(b.keywords)
        if not union:
            return 0.0
        inter = set(a.keywords) & set(b.keywords)
        return sum(self.idf.get(k, 1.0) for k in inter) / sum(self.idf.get(k, 1.0) for k in union)

    def __call__(self, query: Drawing, image: Drawing) -> float:
        if query.key == image.key:
            return 1.0
        score = (0.25 * (query.category == image.category) + 0.20 * (query.subject == image.subject)
                 + 0.50 * self.keyword_overlap(query, image))
        return min(MAX_RELATED, score)


def expert_votes(relevance: np.ndarray, rng: np.random.Generator, noise: float) -> np.ndarray:
    """(n, 3) votes 1..4 from three experts, each with a leniency bias of their own."""
    bias = rng.normal(0.0, 0.25, size=3)
    raw = 1 + 3 * relevance[:, None] + bias[None, :] + rng.normal(0.0, noise, size=(len(relevance), 3))
    return np.clip(np.rint(raw), 1, 4).astype(int)


def crowd_votes(relevance: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Counts of "fits" and "does not fit" from a crowd of 3..7 people per pair."""
    size = rng.integers(3, 8, size=len(relevance))
    p = np.clip(relevance + rng.normal(0.0, 0.1, size=len(relevance)), 0.02, 0.98)
    yes = rng.binomial(size, p)
    return yes, size - yes


def render(png: Path, side: int = IMAGE_SIDE) -> Image.Image:
    """The drawing on white, letter-boxed into a square with a margin."""
    im = load_image(png, max_side=int(side * (1 - 2 * MARGIN)))
    canvas = Image.new("RGB", (side, side), (255, 255, 255))
    canvas.paste(im, ((side - im.width) // 2, (side - im.height) // 2))
    return canvas


def _render_file(job: tuple[Path, Path]) -> None:
    """Render one library PNG to the layout. Plain zlib, not optimize=True: that searched for
    the smallest file and took more than half of the build for the same pixels."""
    source, target = job
    render(source).save(target)


@dataclass(frozen=True)
class BuildSettings:
    n_images: int | None          # None: every usable drawing
    test_image_fraction: float
    same_subject_pairs: int
    random_pairs: int
    expert_noise: float
    seed: int
    svg_dir: str = str(config.OPENCLIPART_SVG_DIR)
    png_dir: str = str(config.OPENCLIPART_PNG_DIR)
    rule_version: int = RULE_VERSION

    @classmethod
    def from_config(cls, cfg: config.SearchConfig) -> "BuildSettings":
        return cls(cfg.n_images, cfg.test_image_fraction, int(cfg.same_subject_pairs), int(cfg.random_pairs),
                   cfg.expert_noise, cfg.seed)


def _training_pairs(train: list[Drawing], s: BuildSettings, rng: np.random.Generator) -> list[tuple[int, int, str, str]]:
    """(query drawing, image drawing, query id, text): own image, same subject, random."""
    by_subject: dict[str, list[int]] = defaultdict(list)
    for i, d in enumerate(train):
        by_subject[d.subject].append(i)
    pairs = []
    for q, d in enumerate(train):
        mates = [i for i in by_subject[d.subject] if i != q]
        if len(mates) < s.same_subject_pairs:   # a small folder: fill from the same category
            mates += [i for i, o in enumerate(train) if o.category == d.category and o.subject != d.subject]
        chosen = {q}
        chosen.update(rng.permutation(mates)[:s.same_subject_pairs].tolist())
        others = [i for i in rng.permutation(len(train)) if i not in chosen][:s.random_pairs]
        chosen.update(int(i) for i in others)
        for k, text in enumerate(query_texts(d)):
            pairs += [(q, int(j), f"{d.file_name}#{k}", text) for j in sorted(chosen)]
    return pairs


def _vote_rows(pairs: list[tuple[int, int, str]], q_draw: Sequence[Drawing], i_draw: Sequence[Drawing],
               rule: RelevanceRule, s: BuildSettings, rng: np.random.Generator) -> tuple[pd.DataFrame, pd.DataFrame]:
    rel = np.array([rule(q_draw[q], i_draw[j]) for q, j, _ in pairs])
    votes = expert_votes(rel, rng, s.expert_noise)
    yes, no = crowd_votes(rel, rng)
    images = [i_draw[j].file_name for _, j, _ in pairs]
    qids = [qid for _, _, qid in pairs]
    experts = pd.DataFrame({"image": images, "query_id": qids, "e1": votes[:, 0], "e2": votes[:, 1], "e3": votes[:, 2]})
    share = np.round(yes / (yes + no), 4)
    crowd = pd.DataFrame({"image": images, "query_id": qids, "share": share, "yes": yes, "no": no})
    return experts, crowd


def build(out_dir: str | Path, settings: BuildSettings) -> Path:
    """Write the course layout for ``settings`` into ``out_dir`` (replaced if present)."""
    out_dir = Path(out_dir)
    svg_dir, png_dir = Path(settings.svg_dir), Path(settings.png_dir)
    if not svg_dir.is_dir() or not png_dir.is_dir():
        raise FileNotFoundError(
            f"Open Clip Art is not installed ({svg_dir}, {png_dir}); install the Debian packages "
            "openclipart-svg and openclipart-png, or point SearchConfig.dataset_dir at a folder in the "
            "course layout")
    rng = np.random.default_rng(settings.seed)
    library = scan_library(svg_dir, png_dir)
    drawings = pick_subset(library, settings.n_images, settings.seed)
    rule = RelevanceRule(library)
    order = rng.permutation(len(drawings))
    n_test = max(1, int(round(settings.test_image_fraction * len(drawings))))
    test = sorted((drawings[i] for i in order[:n_test]), key=lambda d: d.key)
    train = sorted((drawings[i] for i in order[n_test:]), key=lambda d: d.key)

    if out_dir.exists():
        shutil.rmtree(out_dir)
    jobs = []
    for split, group in (("train", train), ("test", test)):
        (out_dir / f"{split}_images").mkdir(parents=True)
        jobs += [(png_dir / f"{d.key}.png", out_dir / f"{split}_images" / d.file_name) for d in group]
    # decoding and resizing hold the GIL, so processes, not threads: 1.8x faster on 2 cores
    with ProcessPoolExecutor(max_workers=os.cpu_count()) as pool:
        list(progress_bar(pool.map(_render_file, jobs, chunksize=16), total=len(jobs), desc="render drawings",
                          leave=False, mininterval=5))   # a few lines, not a hundred, in a notebook's output

    pairs = _training_pairs(train, settings, rng)
    pd.DataFrame({"image": [train[j].file_name for _, j, _, _ in pairs], "query_id": [p[2] for p in pairs],
                  "query_text": [p[3] for p in pairs]}).to_csv(out_dir / "train_dataset.csv", index=False)
    experts, crowd = _vote_rows([(q, j, qid) for q, j, qid, _ in pairs], train, train, rule, settings, rng)
    experts.to_csv(out_dir / "ExpertAnnotations.tsv", sep="\t", header=False, index=False)
    crowd.to_csv(out_dir / "CrowdAnnotations.tsv", sep="\t", header=False, index=False)

    queries = [(f"{d.file_name}#{k}", text, d.file_name, q) for q, d in enumerate(test)
               for k, text in enumerate(query_texts(d))]
    pd.DataFrame([q[:3] for q in queries], columns=["query_id", "query_text", "image"]).to_csv(
        out_dir / "test_queries.csv", sep="|", index=False)
    # graded relevance of the gallery for the search metrics: every related test pair
    related = [(q, j, qid) for qid, _, _, q in queries for j in range(len(test)) if rule(test[q], test[j]) > 0]
    test_experts, _ = _vote_rows(related, test, test, rule, settings, rng)
    test_experts.to_csv(out_dir / "test_annotations.tsv", sep="\t", header=False, index=False)

    manifest = {"settings": asdict(settings), "drawings in library": len(library),
                "train images": len(train), "test images": len(test), "train pairs": len(pairs),
                "test queries": len(queries), "annotated test pairs": len(related)}
    atomic_write_text(out_dir / "build.json", json.dumps(manifest, indent=2) + "\n")
    return out_dir


def dataset_dir(settings: BuildSettings, root: Path | None = None) -> Path:
    return (root or config.SEARCH_DATA_DIR) / f"openclipart-{fingerprint(settings)}"


def ensure_built(settings: BuildSettings, root: Path | None = None) -> Path:
    """The folder for ``settings``, built unless a finished build (``build.json``) is there."""
    out = dataset_dir(settings, root)
    if (out / "build.json").exists():
        return out
    return build(out, settings)
