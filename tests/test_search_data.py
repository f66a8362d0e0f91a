"""The course-layout reader and the Open Clip Art builder."""
import numpy as np
import pandas as pd
import pytest

import config
from cvtasks.data import course_search, openclipart
from tests.search_fixtures import write_course_layout, write_library


# --- the course layout ------------------------------------------------------------------
def test_loader_reads_the_course_layout(tmp_path):
    data = course_search.load(write_course_layout(tmp_path / "course"))
    assert len(data.pairs) == 4   # the pair whose image file is missing is dropped ...
    assert data.dropped["pairs whose image is missing"] == 1   # ... and counted
    first = data.pairs.iloc[0]
    assert (first.image, first.query_id, first.query_text) == ("img0.jpg", "img0.jpg#0", "A red square.")
    assert [first.expert_1, first.expert_2, first.expert_3] == [4, 4, 3]
    assert first.share == 1.0 and first.n_yes == 3 and first.n_no == 0
    assert np.isnan(data.pairs.iloc[3].share)   # no crowd votes for that pair
    assert data.test_queries.columns.tolist() == ["query_id", "query_text", "image", "kind"]
    assert (data.test_queries.kind == "new").all()   # a course folder has no kind column: new queries
    assert data.test_queries.image.tolist() == ["t0.png", "t1.jpg"]
    assert data.train_images == ["img0.jpg", "img1.jpg", "img2.jpg"]
    assert data.test_images == ["t0.png", "t1.jpg"]
    assert data.test_votes is None


def test_loader_names_a_missing_file(tmp_path):
    root = write_course_layout(tmp_path / "course")
    (root / "CrowdAnnotations.tsv").unlink()
    with pytest.raises(course_search.DatasetLayoutError, match="CrowdAnnotations.tsv is missing"):
        course_search.load(root)


def test_loader_rejects_wrong_columns_and_votes(tmp_path):
    root = write_course_layout(tmp_path / "course")
    (root / "ExpertAnnotations.tsv").write_text("img0.jpg\timg0.jpg#0\t4\t4\n")
    with pytest.raises(course_search.DatasetLayoutError, match="expected 5 columns"):
        course_search.load(root)
    (root / "ExpertAnnotations.tsv").write_text("img0.jpg\timg0.jpg#0\t4\t4\t7\n")
    with pytest.raises(course_search.DatasetLayoutError, match="1..4"):
        course_search.load(root)


def test_transparent_pixels_become_white(tmp_path):
    root = write_course_layout(tmp_path / "course")
    image = np.asarray(course_search.load_image(root / "test_images" / "t0.png"))
    assert image.shape == (20, 20, 3)
    assert (image[0, 0] == 255).all()      # transparent corner: white, not black
    assert (image[10, 10] == 0).all()      # the opaque black square stays black


# --- the builder ------------------------------------------------------------------------
def settings(tmp_path, **kw):
    svg_dir, png_dir = write_library(tmp_path / "lib")
    base = dict(n_images=20, test_image_fraction=0.25, val_image_fraction=0.2, nomatch_categories=0,
                seen_queries=0, same_subject_pairs=2, random_pairs=2, expert_noise=0.35, seed=3,
                svg_dir=str(svg_dir), png_dir=str(png_dir))
    return openclipart.BuildSettings(**{**base, **kw})


def test_scan_skips_untitled_and_collection_titles(tmp_path):
    s = settings(tmp_path)
    drawings = openclipart.scan_library(openclipart.Path(s.svg_dir), openclipart.Path(s.png_dir))
    assert len(drawings) == 24 and all(d.category != "shapes" for d in drawings)
    cat = next(d for d in drawings if d.key == "animals/cats/cats_01")
    assert cat.title == "cat number 1" and cat.description == "a drawing of a cat"
    assert set(cat.keywords) == {"cat", "animal", "tag1"}
    assert openclipart.query_texts(cat) == ["cat number 1", "a drawing of a cat"]


def test_relevance_rule_by_hand(tmp_path):
    D = openclipart.Drawing
    cat = D("animals/cats/a", "a", "", ("cat", "animal"))
    cat2 = D("animals/cats/b", "b", "", ("cat", "animal"))
    bird = D("animals/birds/c", "c", "", ("bird", "animal"))
    car = D("transportation/cars/d", "d", "", ("car",))
    rule = openclipart.RelevanceRule([cat, cat2, bird, car])
    idf = rule.idf
    assert rule(cat, cat) == 1.0
    assert rule(cat, cat2) == pytest.approx(min(0.75, 0.25 + 0.20 + 0.50 * 1.0))
    overlap = idf["animal"] / (idf["animal"] + idf["cat"] + idf["bird"])
    assert rule(cat, bird) == pytest.approx(0.25 + 0.50 * overlap)
    assert rule(cat, car) == 0.0


def test_builder_writes_a_readable_deterministic_layout(tmp_path):
    s = settings(tmp_path)
    a = openclipart.build(tmp_path / "a", s)
    b = openclipart.build(tmp_path / "b", s)
    for name in ("train_dataset.csv", "ExpertAnnotations.tsv", "CrowdAnnotations.tsv", "test_queries.csv",
                 "test_annotations.tsv"):
        assert (a / name).read_bytes() == (b / name).read_bytes(), name
    data = course_search.load(a)
    galleries = [set(data.train_images), set(data.val_images), set(data.test_images)]
    assert sum(map(len, galleries)) == 20 and all(galleries)
    assert not (galleries[0] & galleries[1] or galleries[0] & galleries[2] or galleries[1] & galleries[2])
    votes = data.pairs[["expert_1", "expert_2", "expert_3"]].to_numpy()
    assert votes.min() >= 1 and votes.max() <= 4
    assert ((data.pairs.n_yes + data.pairs.n_no).between(3, 7)).all()
    own = data.pairs.query_id.str.split("#").str[0] == data.pairs.image
    assert own.sum() == data.pairs.query_id.nunique()          # every query meets its own image
    assert votes[own.to_numpy()].mean() > votes[~own.to_numpy()].mean() + 1
    image = course_search.load_image(a / "train_images" / data.train_images[0])
    assert image.size == (openclipart.IMAGE_SIDE, openclipart.IMAGE_SIDE)
    assert np.asarray(image)[0, 0].tolist() == [255, 255, 255]   # composited on white
    assert data.test_votes is not None and set(data.test_votes.image) <= set(data.test_images)


def test_builder_is_reused_until_the_settings_change(tmp_path):
    s = settings(tmp_path)
    first = openclipart.ensure_built(s, root=tmp_path / "out")
    stamp = (first / "build.json").stat().st_mtime_ns
    assert openclipart.ensure_built(s, root=tmp_path / "out") == first
    assert (first / "build.json").stat().st_mtime_ns == stamp
    other = openclipart.ensure_built(openclipart.BuildSettings(**{**s.__dict__, "seed": 4}), root=tmp_path / "out")
    assert other != first and (other / "build.json").exists()
    assert pd.read_csv(other / "train_dataset.csv").shape[0] > 0


def test_builder_takes_every_usable_drawing_by_default(tmp_path):
    s = settings(tmp_path, n_images=None)
    out = openclipart.build(tmp_path / "all", s)
    usable = openclipart.scan_library(openclipart.Path(s.svg_dir), openclipart.Path(s.png_dir))
    data = course_search.load(out)
    assert len(data.train_images) + len(data.val_images) + len(data.test_images) == len(usable) == 24
    assert config.get("search", quick=False).n_images is None


def test_builder_refuses_more_images_than_the_library_has(tmp_path):
    with pytest.raises(ValueError, match="only 24 usable drawings"):
        openclipart.build(tmp_path / "x", settings(tmp_path, n_images=100))


@pytest.mark.skipif(not config.OPENCLIPART_SVG_DIR.is_dir(), reason="openclipart-svg is not installed")
def test_real_library_metadata():
    svg = config.OPENCLIPART_SVG_DIR / "science/medicine/siringa_architetto_franc_01.svg"
    drawing = openclipart.read_drawing(svg, config.OPENCLIPART_SVG_DIR)
    assert drawing.title == "siringa" and drawing.subject == "science/medicine"
    assert (config.OPENCLIPART_PNG_DIR / f"{drawing.key}.png").exists()


def test_items_that_share_a_key_directly_or_through_others_are_one_group():
    from cvtasks.data.grouping import groups_by_shared_keys

    labels = groups_by_shared_keys([("a.png", "cat"), ("b.png", "dog"), ("c.png", "cat"), ("b.png", "bird"),
                                    ("d.png", "fish"), ("c.png", "bird")], 6)
    assert len({labels[0], labels[1], labels[2], labels[3], labels[5]}) == 1   # a-c by text, c-b-... by image
    assert labels[4] != labels[0]
