"""The notebooks: thin (one stage call per cell, no loops or bookkeeping), declaring the project's
kernel, and executed in quick mode with every figure cell leaving an image."""
import ast
import importlib
import os
import re
import shutil
import subprocess
import sys

import nbformat
import pytest

import config
from cvtasks import report
from cvtasks.registry import TASK_CLASSES

FORBIDDEN_CALLS = {"write_metrics", "Tracker", "Run", "print", "display", "fit", "exec", "eval"}
MAX_LINES = 4


def notebook(task):
    return nbformat.read(report.notebook_path(task), as_version=4)


def code_cells(nb):
    return [c for c in nb.cells if c.cell_type == "code"]


@pytest.mark.parametrize("task", list(config.NOTEBOOKS))
def test_notebook_declares_the_project_kernel(task):
    assert notebook(task).metadata["kernelspec"]["name"] == config.NOTEBOOK_KERNEL


@pytest.mark.parametrize("task", list(config.NOTEBOOKS))
def test_notebook_is_thin(task):
    """Cells hold no loops, functions, bookkeeping or logging: one short call into the package."""
    for cell in code_cells(notebook(task)):
        tree = ast.parse(cell.source)
        assert len(cell.source.strip().splitlines()) <= MAX_LINES, cell.source
        for node in ast.walk(tree):
            assert not isinstance(node, (ast.For, ast.While, ast.FunctionDef, ast.ClassDef, ast.With, ast.Try,
                                         ast.AugAssign, ast.Lambda, ast.ListComp, ast.DictComp)), cell.source
            if isinstance(node, ast.Assign):
                assert all(isinstance(t, ast.Name) for t in node.targets), f"bookkeeping in: {cell.source}"
            if isinstance(node, ast.Call):
                name = node.func.attr if isinstance(node.func, ast.Attribute) else getattr(node.func, "id", "")
                assert name not in FORBIDDEN_CALLS, f"{name}() in: {cell.source}"


@pytest.mark.parametrize("task", list(config.NOTEBOOKS))
def test_notebook_calls_every_stage_once_in_order(task):
    module, attr = TASK_CLASSES[task]
    stages = getattr(importlib.import_module(module), attr).stages
    calls = []
    for cell in code_cells(notebook(task)):
        for node in ast.walk(ast.parse(cell.source)):
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and \
                    getattr(node.func.value, "id", "") == "task":
                calls.append(node.func.attr)
    assert [c for c in calls if c in stages] == list(stages)
    assert calls[-2:] == ["finish", "conclusions"]


# A figure drawn from a measurement that the notebook does not run (the service's soak: minutes
# on an idle machine) may be absent, but only when the cell says which command produces it.
MEASUREMENT_MISSING = "is missing: run `python -m cvtasks bench"


def cell_text(cell):
    return "".join(out.get("text", "") + "".join(v for k, v in out.get("data", {}).items() if k.startswith("text/"))
                   for out in cell.get("outputs", []))


def figure_cells_without_images(nb):
    missing = []
    for cell in code_cells(nb):
        if "figure" in cell.metadata.get("tags", []):
            if not any("image/png" in out.get("data", {}) for out in cell.get("outputs", [])) \
                    and MEASUREMENT_MISSING not in cell_text(cell):
                missing.append(cell.source)
    return missing


@pytest.mark.slow
@pytest.mark.parametrize("task", list(config.NOTEBOOKS))
def test_notebook_runs_in_quick_mode_and_draws_its_figures(task, tmp_path):
    before = report.notebook_path(task).read_bytes()
    result = report.execute(task, quick=True, out_dir=tmp_path)
    assert report.notebook_path(task).read_bytes() == before
    executed = nbformat.read(result.executed, as_version=4)
    assert any("figure" in c.metadata.get("tags", []) for c in code_cells(executed))
    assert figure_cells_without_images(executed) == []
    summary = code_cells(executed)[0].outputs[1]   # the summary, filled in by finish()
    assert "Summary of this run" in summary["data"]["text/markdown"]


@pytest.mark.slow
def test_jupyters_own_command_line_runs_a_notebook_with_the_declared_kernel(tmp_path):
    """As a user's Jupyter would: `jupyter nbconvert --execute`, the kernel taken from the notebook."""
    copy = tmp_path / "Styles_Avatars.ipynb"
    shutil.copy(report.notebook_path("styles"), copy)
    env = {**os.environ, config.QUICK_ENV: "1", "CVTASKS_WANDB": "disabled", "TQDM_DISABLE": "1"}
    jupyter = os.path.join(os.path.dirname(sys.executable), "jupyter")
    subprocess.run([jupyter, "nbconvert", "--to", "notebook", "--execute", "--output", "executed.ipynb",
                    "--ExecutePreprocessor.timeout=600", str(copy)], cwd=tmp_path, env=env, check=True,
                   capture_output=True)
    executed = nbformat.read(tmp_path / "executed.ipynb", as_version=4)
    assert executed.metadata["kernelspec"]["name"] == config.NOTEBOOK_KERNEL
    assert figure_cells_without_images(executed) == []
    assert not [o for c in code_cells(executed) for o in c.outputs if o.output_type == "error"]


def _outputs(nb, kind):
    """The text of every output of ``kind`` (a MIME type) in the notebook's code cells."""
    for cell in code_cells(nb):
        for out in cell.get("outputs", []):
            if kind in out.get("data", {}):
                yield cell.source, "".join(out["data"][kind])


def _ggplot_share(png: bytes) -> float:
    """Share of a figure's pixels in ggplot's grey axes colour (#E5E5E5)."""
    import io

    import numpy as np
    from PIL import Image

    rgb = np.asarray(Image.open(io.BytesIO(png)).convert("RGB"))
    return float((rgb == (229, 229, 229)).all(-1).mean())


def _unrounded(html: str) -> list[str]:
    """Table cells that show a float as it came (pandas' default: 6 decimals, e.g. 0.954365)
    beside rounded ones: more than 4 decimals and 5 or more significant digits (a threshold shown
    to 3 significant digits, 0.000102, is rounded)."""
    cells = re.findall(r"<td>\s*(-?[0-9]+\.[0-9]+)\s*</td>", html)
    return [c for c in cells if len(c.split(".")[1]) > 4 and len(c.replace("-", "").replace(".", "").lstrip("0")) >= 5]


@pytest.mark.parametrize("task", list(config.NOTEBOOKS))
def test_committed_report_has_no_nan_table_no_dirty_run_and_no_foreign_figure_style(task):
    """The committed notebook reads as a finished report: no table cell shows NaN (an undefined
    value says why instead) or an unrounded float, its run names a commit that holds its code,
    and no figure carries a style that leaked in from a library (Optuna's ggplot grey)."""
    import base64

    nb = notebook(task)
    for source, html in _outputs(nb, "text/html"):
        assert not re.search(r">\s*(NaN|nan)\s*<", html), f"NaN in a table of `{source}`"
        assert _unrounded(html) == [], f"unrounded numbers in a table of `{source}`"
    for kind in ("text/markdown", "text/plain"):
        for source, text in _outputs(nb, kind):
            assert "-dirty" not in text, f"a run from an uncommitted tree in the output of `{source}`"
    for source, png in _outputs(nb, "image/png"):
        assert _ggplot_share(base64.b64decode(png)) < 0.2, f"a ggplot-grey figure in the output of `{source}`"
