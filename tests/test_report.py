"""The notebook runner: quick mode leaves the committed notebook alone; failures name the cell."""
import nbformat
import pytest

import config
from cvtasks import report


def _notebook(path, *sources):
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_markdown_cell("# Demo")] + [nbformat.v4.new_code_cell(s) for s in sources]
    nbformat.write(nb, path)
    return path


@pytest.fixture
def demo(tmp_path, monkeypatch):
    monkeypatch.setattr(config, "ROOT", tmp_path)
    monkeypatch.setattr(config, "REPORTS_DIR", tmp_path / "reports")
    monkeypatch.setattr(config, "NOTEBOOKS", {"demo": "Demo.ipynb"})
    return tmp_path


@pytest.mark.slow
def test_quick_runs_a_copy_with_the_quick_switch(demo, tmp_path):
    src = _notebook(demo / "Demo.ipynb", "import os, pathlib\nprint(os.environ['CVTASKS_QUICK'], pathlib.Path.cwd())")
    before = src.read_bytes()
    result = report.execute("demo", quick=True, out_dir=tmp_path / "out")
    assert src.read_bytes() == before
    out = nbformat.read(result.executed, as_version=4)
    text = out.cells[1].outputs[0]["text"]
    assert text.startswith("1 ") and str(demo) in text  # quick switch on, cwd = repository root
    assert result.html is None


@pytest.mark.slow
def test_full_run_writes_outputs_in_place_and_html(demo):
    src = _notebook(demo / "Demo.ipynb", "import os\nprint('quick=' + os.environ['CVTASKS_QUICK'])")
    result = report.execute("demo", quick=False)
    assert result.executed == src
    assert nbformat.read(src, as_version=4).cells[1].outputs[0]["text"] == "quick=0\n"
    assert result.html == demo / "reports" / "demo" / "Demo.html" and "quick=0" in result.html.read_text()


@pytest.mark.slow
def test_failing_cell_is_named(demo):
    _notebook(demo / "Demo.ipynb", "x = 1", "raise ValueError('bad data')")
    with pytest.raises(report.NotebookError, match=r"Demo.ipynb: cell 2 failed: ValueError: bad data"):
        report.execute("demo", quick=False)
    assert (demo / "reports" / "demo" / "Demo.failed.ipynb").exists()
    assert not nbformat.read(demo / "Demo.ipynb", as_version=4).cells[1].get("outputs")


def test_unknown_task():
    with pytest.raises(ValueError, match="unknown task"):
        report.notebook_path("cats")
