"""Tiny fixtures for the search tests: a fake Open Clip Art library and a course-layout folder."""
from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

SVG = """<?xml version="1.0" encoding="UTF-8"?>
<svg xmlns="http://www.w3.org/2000/svg" xmlns:cc="http://web.resource.org/cc/"
     xmlns:dc="http://purl.org/dc/elements/1.1/" xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#">
<metadata><rdf:RDF><cc:Work rdf:about=""><dc:title>{title}</dc:title><dc:description>{desc}</dc:description>
<dc:subject><rdf:Bag>{keywords}</rdf:Bag></dc:subject></cc:Work></rdf:RDF></metadata></svg>
"""
SUBJECTS = {  # subject folder -> (colour, keywords)
    "animals/cats": ((200, 120, 40), ["cat", "animal"]),
    "animals/birds": ((40, 90, 200), ["bird", "animal"]),
    "food/fruit": ((30, 180, 40), ["fruit", "food"]),
    "transportation/cars": ((220, 20, 20), ["car", "vehicle"]),
}


def write_library(root: Path, per_subject: int = 6, duplicates: int = 0, shared_titles: int = 0) -> tuple[Path, Path]:
    """SVGs with metadata and transparent PNGs, mirrored paths, like the Debian packages.
    ``duplicates``: that many cat drawings copied, byte for byte, under other paths and titles
    (as the packages do); ``shared_titles``: that many birds titled like a fruit."""
    svg_dir, png_dir = root / "svg", root / "png"
    for subject, (colour, keywords) in SUBJECTS.items():
        for i in range(per_subject):
            name = f"{subject}/{subject.split('/')[1]}_{i:02d}"
            (svg_dir / name).parent.mkdir(parents=True, exist_ok=True)
            (png_dir / name).parent.mkdir(parents=True, exist_ok=True)
            title = f"{subject.split('/')[1][:-1]} number {i}"
            desc = f"a drawing of a {keywords[0]}" if i % 2 else ""
            tags = "".join(f"<rdf:li>{k}</rdf:li>" for k in keywords + [f"tag{i}"])
            (svg_dir / f"{name}.svg").write_text(SVG.format(title=title, desc=desc, keywords=tags))
            rgba = np.zeros((40 + 4 * i, 60, 4), np.uint8)   # transparent background
            rgba[10:30, 10 + i:40 + i] = (*colour, 255)
            rgba[12:14 + 2 * i, 12:20] = (255 - colour[0], 255 - colour[1], 255 - colour[2], 255)   # each its own
            Image.fromarray(rgba, "RGBA").save(png_dir / f"{name}.png")
    for i in range(duplicates):
        name = f"animals/copies/copy_{i:02d}"
        (svg_dir / name).parent.mkdir(parents=True, exist_ok=True)
        (png_dir / name).parent.mkdir(parents=True, exist_ok=True)
        (svg_dir / f"{name}.svg").write_text(SVG.format(title=f"copied drawing {i}", desc="", keywords=""))
        (png_dir / f"{name}.png").write_bytes((png_dir / f"animals/cats/cats_{i:02d}.png").read_bytes())
    for i in range(shared_titles):
        svg = svg_dir / f"animals/birds/birds_{i:02d}.svg"
        svg.write_text(svg.read_text().replace(f"bird number {i}", f"fruit number {i}"))
    # one drawing without a title and one with a collection title shared by four: both skipped
    (svg_dir / "shapes").mkdir(parents=True)
    (png_dir / "shapes").mkdir(parents=True)
    for i in range(5):
        title = "" if i == 0 else "Gramastar"
        (svg_dir / f"shapes/star_{i}.svg").write_text(SVG.format(title=title, desc="", keywords=""))
        Image.new("RGBA", (30, 30)).save(png_dir / f"shapes/star_{i}.png")
    return svg_dir, png_dir


def write_course_layout(root: Path) -> Path:
    """A tiny dataset in the course's own file formats (headers, separators, no-header TSVs)."""
    (root / "train_images").mkdir(parents=True)
    (root / "test_images").mkdir()
    for i, colour in enumerate(["red", "green", "blue"]):
        Image.new("RGB", (32, 24), colour).save(root / "train_images" / f"img{i}.jpg")
    rgba = np.zeros((20, 20, 4), np.uint8)
    rgba[5:15, 5:15] = (0, 0, 0, 255)
    Image.fromarray(rgba, "RGBA").save(root / "test_images" / "t0.png")
    Image.new("RGB", (20, 20), "white").save(root / "test_images" / "t1.jpg")
    (root / "train_dataset.csv").write_text(
        "image,query_id,query_text\n"
        "img0.jpg,img0.jpg#0,A red square.\n"
        "img1.jpg,img0.jpg#0,A red square.\n"
        "img1.jpg,img1.jpg#0,A green field.\n"
        "img2.jpg,img1.jpg#0,A green field.\n")
    (root / "ExpertAnnotations.tsv").write_text(
        "img0.jpg\timg0.jpg#0\t4\t4\t3\n"
        "img1.jpg\timg0.jpg#0\t1\t1\t2\n"
        "img1.jpg\timg1.jpg#0\t4\t3\t4\n"
        "img2.jpg\timg1.jpg#0\t1\t2\t1\n"
        "missing.jpg\timg1.jpg#0\t1\t1\t1\n")
    (root / "CrowdAnnotations.tsv").write_text(
        "img0.jpg\timg0.jpg#0\t1.0\t3\t0\n"
        "img1.jpg\timg0.jpg#0\t0.0\t0\t3\n"
        "img1.jpg\timg1.jpg#0\t0.666667\t2\t1\n")
    (root / "test_queries.csv").write_text(
        "query_id|query_text|image\n"
        "t0.png#0|A black square on white.|t0.png\n"
        "t1.jpg#0|An empty white page.|t1.jpg\n")
    return root
