import numpy as np
import pytest
from PIL import Image

from cvtasks.data.folder import scan_image_folder


def _png(path, value=128, size=(12, 10)):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.full((*size[::-1], 3), value, np.uint8)).save(path)
    return path


def test_scan_skips_counts_and_reports_bad_files(tmp_path):
    _png(tmp_path / "alpha" / "a1.png")
    _png(tmp_path / "alpha" / "a2.png")
    good = _png(tmp_path / "beta" / "b1.png", value=10)
    (tmp_path / "beta" / "notes.txt").write_text("not an image")
    truncated = tmp_path / "beta" / "broken.png"
    truncated.write_bytes(good.read_bytes()[:30])
    (tmp_path / "beta" / "fake.jpg").write_bytes(b"this is no jpeg")
    folder = scan_image_folder(tmp_path)
    assert folder.classes == ["alpha", "beta"]
    assert folder.counts() == {"alpha": 2, "beta": 1}
    assert len(folder.skipped) == 3
    reasons = {p.name: r for p, r in folder.skipped}
    assert reasons["notes.txt"].startswith("not an image") and reasons["broken.png"].startswith("unreadable")
    assert "1 not an image file" in folder.summary() and "2 unreadable" in folder.summary()
    im = folder.load(2, size=16)
    assert im.size == (16, 16) and im.mode == "RGB"


def test_missing_folder_or_class_is_clear(tmp_path):
    with pytest.raises(FileNotFoundError, match="does not exist"):
        scan_image_folder(tmp_path / "nope")
    _png(tmp_path / "normal" / "x.png")
    with pytest.raises(FileNotFoundError, match="spill"):
        scan_image_folder(tmp_path, classes=["normal", "spill"])
