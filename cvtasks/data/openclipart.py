"""The embedded search dataset: Open Clip Art drawings written out in the course layout.

The Open Clip Art Library (Debian ``openclipart-svg`` + ``openclipart-png``) holds real
drawings with human-written titles, descriptions and keywords. The builder

1. reads every SVG's metadata (``dc:title``, ``dc:description``, keyword ``rdf:li`` tags);
   keeps drawings whose title names the drawing (a title shared by more than
   ``MAX_TITLE_REPEATS`` drawings is a collection name such as "Lemon SVG theme");
2. takes all of them (or ``n_images`` round-robin over the library's folders) and renders each
   on white; **removes duplicates** by the content of the rendered image: byte-identical pixels
   (the packages ship about 420 such groups under several paths), and near-duplicates: drawings
   whose inked area, cropped and shrunk to an 8 x 8 colour thumbnail, differs by at most
   ``NEAR_DUPLICATE_LEVELS`` grey levels on average, with the same shape of crop (the same
   drawing re-saved or rescaled; faint line drawings, whose thumbnails are all near white, only
   by their pixels). One drawing of each group is kept (``duplicate_groups``). A
   difference hash was tried first and merged unrelated drawings: a flat or striped drawing has
   no horizontal gradient, so every striped flag hashed alike;
3. makes queries from each drawing's title (query ``<image>#0``) and, when it says something
   else, its description (``<image>#1``); drawings that share a query text (case and spaces
   aside) form one group, so that **no query text is on two sides of the split**;
4. holds out whole categories (top folders) for the "no good match" test: their drawings are in
   no gallery, their texts are queries with nothing to find (half for validation, half for test);
5. splits the groups into train, validation and test; validation and test are each a search
   gallery (``val_images/``, ``test_images/``) with new queries (the gallery drawings' own
   texts), no-match queries and, for test, seen queries (training texts searching new images);
6. pairs every training query with its own image, images of the same subject and random images,
   and every validation / test query with its own image, every gallery drawing related to it and
   random ones (``*_recipe.tsv`` marks the ones the training recipe would have drawn), and
   derives votes from a relevance rule (below): these votes are DERIVED, NOT HUMAN; only the
   texts and drawings are human work.

Relevance of drawing j to the query of drawing q (0..1):
    1                                           when j is q's own drawing
    min(0.75, 0.25 * same category              (top folder, e.g. food)
              + 0.20 * same subject             (leaf folder, e.g. food/fruit)
              + 0.50 * keyword overlap)         (idf-weighted Jaccard of the keyword tags)
Each of three experts votes round(1 + 3 * relevance + bias + noise) clipped to 1..4, with a
leniency bias of their own (normal, sd 0.25) and per-vote noise (sd ``expert_noise``); a crowd
of 3 to 7 people each says "fits" with probability relevance + noise (sd 0.1), clipped.

The output folder is named by a fingerprint of the settings and finished by ``build.json``
(which also records the duplicates and shared texts a split without these steps would have
let across); a folder with that file is reused as is, so the build runs once per settings.
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
from cvtasks.data.grouping import UnionFind, groups_by_shared_keys
from cvtasks.images import ImageRejected, open_checked
from cvtasks.io import atomic_write_text
from cvtasks.runtime import progress_bar

NS = {"dc": "http://purl.org/dc/elements/1.1/", "rdf": "http://www.w3.org/1999/02/22-rdf-syntax-ns#",
      "cc": "http://web.resource.org/cc/"}
RULE_VERSION = 3          # bump when the relevance rule or the file format changes
MAX_TITLE_REPEATS = 3     # a title on more drawings than this names a collection, not a drawing
MAX_RELATED = 0.75        # the best score a drawing other than the query's own can get
MAX_PIXELS = 4_000_000   # the 20 larger PNGs (up to 231 Mpx) would cost seconds and GBs each
IMAGE_SIDE = 256          # drawings are written as white squares of this side
MARGIN = 0.06             # white border, so the encoder's centre crop keeps the whole drawing
NEAR_DUPLICATE_LEVELS = 3.0   # mean |difference| (of 255) of two ink thumbnails of one drawing
FAINT_THUMBNAIL = 235         # thumbnails paler than this on average (thin lines) match only exactly


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


def normalise_text(text: str) -> str:
    """A query text as compared across splits: lower case, single spaces, no edge punctuation."""
    return " ".join(text.lower().split()).strip(" .,;:!?\"'")


def thumbnail(image: Image.Image) -> tuple[bytes, float]:
    """The drawing cropped to its ink (the white margin left out), as an 8 x 8 colour thumbnail,
    and the crop's aspect ratio: what two copies of one drawing share."""
    rgb = np.asarray(image.convert("RGB"))
    ys, xs = np.nonzero(rgb.min(2) < 250)
    if len(ys):
        rgb = rgb[ys.min():ys.max() + 1, xs.min():xs.max() + 1]
    small = np.asarray(Image.fromarray(rgb).resize((8, 8), Image.BOX), dtype=np.uint8)
    return small.tobytes(), rgb.shape[1] / rgb.shape[0]


def _near(thumbs: Sequence[bytes], aspects: Sequence[float], max_levels: float) -> list[tuple[int, int]]:
    """Pairs of thumbnails within ``max_levels`` on average whose crops have about the same shape
    (aspect within 10 %)."""
    t = np.stack([np.frombuffer(b, dtype=np.uint8) for b in thumbs]).astype(np.int16) if thumbs else np.zeros((0, 1))
    ar = np.log(np.asarray(aspects, dtype=float))
    inked = t.mean(1) < FAINT_THUMBNAIL
    pairs = []
    for i in range(len(t) - 1):
        if not inked[i]:
            continue
        same_shape = np.flatnonzero((np.abs(ar[i + 1:] - ar[i]) < 0.1) & inked[i + 1:])
        if len(same_shape):
            close = np.abs(t[i + 1:][same_shape] - t[i]).mean(1) <= max_levels
            pairs += [(i, i + 1 + int(j)) for j in same_shape[close]]
    return pairs


def duplicate_groups(digests: Sequence[str], thumbs: Sequence[bytes], aspects: Sequence[float],
                     max_levels: float = NEAR_DUPLICATE_LEVELS) -> np.ndarray:
    """A group label per drawing: byte-identical pixels (``digests``), or ink thumbnails within
    ``max_levels`` of the same shape: copies of one drawing."""
    groups = UnionFind(len(digests))
    first: dict[str, int] = {}
    for i, d in enumerate(digests):
        if d in first:
            groups.join(i, first[d])
        first.setdefault(d, i)
    for i, j in _near(thumbs, aspects, max_levels):
        groups.join(i, j)
    return groups.labels()


def text_groups(drawings: Sequence[Drawing]) -> np.ndarray:
    """A group label per drawing: drawings whose query texts meet (normalised) are one group."""
    return groups_by_shared_keys(([normalise_text(t) for t in query_texts(d)] for d in drawings), len(drawings))


def render(png: Path, side: int = IMAGE_SIDE) -> Image.Image:
    """The drawing on white, letter-boxed into a square with a margin."""
    im = load_image(png, max_side=int(side * (1 - 2 * MARGIN)))
    canvas = Image.new("RGB", (side, side), (255, 255, 255))
    canvas.paste(im, ((side - im.width) // 2, (side - im.height) // 2))
    return canvas


def _render_file(job: tuple[Path, Path]) -> tuple[str, bytes, float]:
    """Render one library PNG to ``target``; return its pixels' SHA-256 and its hashes. Plain
    zlib, not optimize=True: that searched for the smallest file and took more than half of the
    build for the same pixels."""
    import hashlib

    source, target = job
    image = render(source)
    image.save(target)
    return (hashlib.sha256(image.tobytes()).hexdigest(), *thumbnail(image))


@dataclass(frozen=True)
class BuildSettings:
    n_images: int | None          # None: every usable drawing
    test_image_fraction: float    # of the drawings (whole text groups): the test gallery
    val_image_fraction: float     # likewise: the validation gallery
    nomatch_categories: int       # top folders held out for "no good match" (half val, half test)
    seen_queries: int             # training texts that also search the test gallery (diagnostic)
    same_subject_pairs: int
    random_pairs: int
    expert_noise: float
    seed: int
    svg_dir: str = str(config.OPENCLIPART_SVG_DIR)
    png_dir: str = str(config.OPENCLIPART_PNG_DIR)
    rule_version: int = RULE_VERSION

    @classmethod
    def from_config(cls, cfg: config.SearchConfig) -> "BuildSettings":
        return cls(cfg.n_images, cfg.test_image_fraction, cfg.val_image_fraction, int(cfg.nomatch_categories),
                   int(cfg.seen_queries), int(cfg.same_subject_pairs), int(cfg.random_pairs), cfg.expert_noise,
                   cfg.seed)


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


def _gallery_pairs(queries: Sequence[tuple[str, str, Drawing, str]], gallery: Sequence[Drawing], rule: RelevanceRule,
                   s: BuildSettings, rng: np.random.Generator) -> tuple[list[tuple[Drawing, int, str]], list[tuple[int, str]]]:
    """(query drawing, gallery index, query id) to vote on: every gallery drawing related to the
    query (its own one included) and ``random_pairs`` unrelated ones; and, among them, the
    training recipe's sample (own image, ``same_subject_pairs`` of its subject, the random ones):
    the pairs on which MAE / RMSE / R2 compare with training."""
    pairs, recipe = [], []
    for qid, _, drawing, _ in queries:
        related = [j for j, g in enumerate(gallery) if rule(drawing, g) > 0]
        taken = set(related)
        others = [int(j) for j in rng.permutation(len(gallery)) if j not in taken][:s.random_pairs]
        pairs += [(drawing, int(j), qid) for j in sorted(related + others)]
        own = [j for j in related if gallery[j].key == drawing.key]
        mates = [j for j in related if gallery[j].subject == drawing.subject and gallery[j].key != drawing.key]
        mates = [int(j) for j in rng.permutation(mates)[:s.same_subject_pairs]] if mates else []
        recipe += [(j, qid) for j in sorted(own + mates + others)]
    return pairs, recipe


def _write_votes(path: Path, pairs: Sequence[tuple[Drawing, int, str]], gallery: Sequence[Drawing],
                 rule: RelevanceRule, s: BuildSettings, rng: np.random.Generator) -> None:
    """The votes, and beside them (``*_relevance.tsv``) the rule's own value of each pair: what a
    perfect follower of the rule would predict, for the report's ceiling. Not votes."""
    rel = np.array([rule(q, gallery[j]) for q, j, _ in pairs])
    votes = expert_votes(rel, rng, s.expert_noise)
    images, qids = [gallery[j].file_name for _, j, _ in pairs], [p[2] for p in pairs]
    pd.DataFrame({"image": images, "query_id": qids, "e1": votes[:, 0], "e2": votes[:, 1],
                  "e3": votes[:, 2]}).to_csv(path, sep="\t", header=False, index=False)
    pd.DataFrame({"image": images, "query_id": qids, "relevance": np.round(rel, 6)}).to_csv(
        path.with_name(path.name.replace("_annotations", "_relevance")), sep="\t", index=False)


def _naive_split_leaks(drawings: Sequence[Drawing], dup: np.ndarray, fraction: float, seed: int) -> dict[str, int]:
    """What the earlier builder's split (drawings shuffled, no duplicate or text grouping) lets
    across: test drawings with a duplicate in training, and test texts that are training texts."""
    order = np.random.default_rng(seed).permutation(len(drawings))
    n_test = max(1, int(round(fraction * len(drawings))))
    test, train = set(order[:n_test].tolist()), set(order[n_test:].tolist())
    train_groups = {dup[i] for i in train}
    train_texts = {normalise_text(t) for i in train for t in query_texts(drawings[i])}
    test_texts = [normalise_text(t) for i in test for t in query_texts(drawings[i])]
    return {"test drawings with a duplicate in training": sum(dup[i] in train_groups for i in test),
            "test query texts that are training texts": sum(t in train_texts for t in test_texts),
            "test query texts": len(test_texts)}


def build(out_dir: str | Path, settings: BuildSettings) -> Path:
    """Write the layout for ``settings`` into ``out_dir`` (replaced if present)."""
    out_dir = Path(out_dir)
    svg_dir, png_dir = Path(settings.svg_dir), Path(settings.png_dir)
    if not svg_dir.is_dir() or not png_dir.is_dir():
        raise FileNotFoundError(
            f"Open Clip Art is not installed ({svg_dir}, {png_dir}); install the Debian packages "
            "openclipart-svg and openclipart-png, or point SearchConfig.dataset_dir at a folder in the "
            "course layout")
    rng = np.random.default_rng(settings.seed)
    library = scan_library(svg_dir, png_dir)
    candidates = pick_subset(library, settings.n_images, settings.seed)
    rule = RelevanceRule(library)
    if out_dir.exists():
        shutil.rmtree(out_dir)
    staging = out_dir / "_rendered"
    staging.mkdir(parents=True)
    jobs = [(png_dir / f"{d.key}.png", staging / d.file_name) for d in candidates]
    # decoding and resizing hold the GIL, so processes, not threads: 1.8x faster on 2 cores
    with ProcessPoolExecutor(max_workers=os.cpu_count()) as pool:
        rendered = list(progress_bar(pool.map(_render_file, jobs, chunksize=16), total=len(jobs),
                                     desc="render drawings", leave=False, mininterval=5))
    dup = duplicate_groups([r[0] for r in rendered], [r[1] for r in rendered], [r[2] for r in rendered])
    keep = sorted({int(np.flatnonzero(dup == g)[0]) for g in np.unique(dup)})
    drawings = [candidates[i] for i in keep]
    before = _naive_split_leaks(candidates, dup, settings.test_image_fraction, settings.seed)

    # held-out categories, then the rest split by text group
    categories = sorted({d.category for d in drawings})
    held = [categories[i] for i in rng.permutation(len(categories))[:settings.nomatch_categories]]
    nomatch = {"val": set(held[: len(held) // 2]), "test": set(held[len(held) // 2:])}
    rest = [d for d in drawings if d.category not in held]
    tgroups = text_groups(rest)
    order = rng.permutation(np.unique(tgroups))
    side: dict[int, str] = {}
    counts = {"test": 0, "val": 0}
    target = {"test": settings.test_image_fraction * len(rest), "val": settings.val_image_fraction * len(rest)}
    sizes = Counter(tgroups.tolist())
    for g in order:
        name = next((k for k in ("test", "val") if counts[k] < target[k]), "train")
        side[int(g)] = name
        if name != "train":
            counts[name] += sizes[int(g)]
    split = {k: sorted((d for d, g in zip(rest, tgroups) if side[int(g)] == k), key=lambda d: d.key)
             for k in ("train", "val", "test")}
    for name, group in split.items():
        folder = out_dir / f"{name}_images"
        folder.mkdir()
        for d in group:
            os.replace(staging / d.file_name, folder / d.file_name)
    shutil.rmtree(staging)

    train = split["train"]
    pairs = _training_pairs(train, settings, rng)
    pd.DataFrame({"image": [train[j].file_name for _, j, _, _ in pairs], "query_id": [p[2] for p in pairs],
                  "query_text": [p[3] for p in pairs]}).to_csv(out_dir / "train_dataset.csv", index=False)
    experts, crowd = _vote_rows([(q, j, qid) for q, j, qid, _ in pairs], train, train, rule, settings, rng)
    experts.to_csv(out_dir / "ExpertAnnotations.tsv", sep="\t", header=False, index=False)
    crowd.to_csv(out_dir / "CrowdAnnotations.tsv", sep="\t", header=False, index=False)

    manifest = {"settings": asdict(settings), "drawings in library": len(library), "candidates": len(candidates),
                "duplicates removed": len(candidates) - len(drawings),
                "duplicate groups": int(sum(c > 1 for c in Counter(dup.tolist()).values())),
                "held-out categories": {k: sorted(v) for k, v in nomatch.items()},
                "train images": len(train), "val images": len(split["val"]), "test images": len(split["test"]),
                "train pairs": len(pairs), "without these steps": before}
    train_texts = [(f"{d.file_name}#{k}", text, d, "") for d in train for k, text in enumerate(query_texts(d))]
    for name in ("val", "test"):
        gallery = split[name]
        queries = [(f"{d.file_name}#{k}", text, d, "new") for d in gallery for k, text in enumerate(query_texts(d))]
        queries += [(f"{d.file_name}#{k}", text, d, "nomatch") for d in drawings if d.category in nomatch[name]
                    for k, text in enumerate(query_texts(d))]
        if name == "test":
            picks = rng.permutation(len(train_texts))[:settings.seen_queries]
            queries += [(qid, text, d, "seen") for qid, text, d, _ in (train_texts[i] for i in sorted(picks))]
        pd.DataFrame({"query_id": [q[0] for q in queries], "query_text": [q[1] for q in queries],
                      "image": [q[2].file_name if q[3] == "new" else "" for q in queries],
                      "kind": [q[3] for q in queries]}).to_csv(out_dir / f"{name}_queries.csv", sep="|", index=False)
        voted, recipe = _gallery_pairs(queries, gallery, rule, settings, rng)
        _write_votes(out_dir / f"{name}_annotations.tsv", voted, gallery, rule, settings, rng)
        pd.DataFrame({"image": [gallery[j].file_name for j, _ in recipe], "query_id": [q for _, q in recipe]}).to_csv(
            out_dir / f"{name}_recipe.tsv", sep="\t", index=False)
        manifest[f"{name} queries"] = dict(Counter(q[3] for q in queries))
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
