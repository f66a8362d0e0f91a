import json

import pytest

import config
from cvtasks import io


@pytest.fixture
def reports(tmp_path, monkeypatch):
    monkeypatch.setattr(config, "REPORTS_DIR", tmp_path)
    return tmp_path


def test_metrics_are_flat_sorted_json(reports):
    path = io.write_metrics("demo", {"test/acc": 0.9, "train/loss": 0.25, "al/labels": 12})
    assert path == reports / "demo" / "metrics.json"
    text = path.read_text()
    assert list(json.loads(text)) == ["al/labels", "test/acc", "train/loss"]
    assert io.read_metrics("demo")["test/acc"] == 0.9


def test_quick_metrics_never_overwrite_the_full_run(reports):
    io.write_metrics("demo", {"test/acc": 0.95})
    io.write_metrics("demo", {"test/acc": 0.5}, quick=True)
    assert io.read_metrics("demo")["test/acc"] == 0.95
    assert io.read_metrics("demo", quick=True)["test/acc"] == 0.5


@pytest.mark.parametrize("bad", [{"test": {"acc": 1}}, {"test/acc": float("nan")}, {"": 1.0},
                                 {"test/acc": "x" * 65}, {"ok": True}])
def test_bad_metrics_are_refused(reports, bad):
    with pytest.raises(ValueError):
        io.write_metrics("demo", bad)
    assert not (reports / "demo" / "metrics.json").exists()


def test_atomic_write_leaves_nothing_on_failure(tmp_path):
    target = tmp_path / "file.txt"
    target.write_text("old")

    def broken(tmp):
        tmp.write_text("half")
        raise RuntimeError("disk full")

    with pytest.raises(RuntimeError):
        io.atomic_write(target, broken)
    assert target.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["file.txt"]


def test_atomic_write_gives_the_usual_file_mode(tmp_path):
    """Not mkstemp's 0600: a model file copied into a container must be readable by its user."""
    import os
    import stat

    from cvtasks.io import atomic_write_text

    mask = os.umask(0o022)
    try:
        path = atomic_write_text(tmp_path / "model.txt", "x")
    finally:
        os.umask(mask)
    assert stat.S_IMODE(path.stat().st_mode) == 0o644


def test_short_labels_are_kept_as_metrics(reports):
    io.write_metrics("demo", {"al/chosen": "margin", "test/acc": 0.9})
    assert io.read_metrics("demo")["al/chosen"] == "margin"
