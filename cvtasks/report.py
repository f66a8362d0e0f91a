"""Execute the notebooks top to bottom with nbclient.

Full mode writes the outputs into the committed notebook and an HTML copy to
reports/<task>/. Quick mode (CVTASKS_QUICK=1 in the kernel) executes a temporary copy and
never touches the committed notebook. A failing cell raises NotebookError naming the notebook
and the cell; in full mode the partly executed notebook is kept beside the HTML copy.
"""
from __future__ import annotations

import os
import tempfile
import time
from collections.abc import Iterable
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import nbformat
from nbclient import NotebookClient
from nbclient.exceptions import CellExecutionError

import config
from cvtasks.io import atomic_write_text


class NotebookError(RuntimeError):
    """A cell of a notebook failed."""


@dataclass
class ReportResult:
    task: str
    notebook: Path
    executed: Path       # where the executed notebook was written
    html: Path | None
    seconds: float


@contextmanager
def _env(**values: str):
    old = {k: os.environ.get(k) for k in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for k, v in old.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def _failed_cell(nb: nbformat.NotebookNode) -> tuple[int, str]:
    for index, cell in enumerate(nb.cells):
        for out in cell.get("outputs", []):
            if out.get("output_type") == "error":
                return index, f"{out.get('ename')}: {out.get('evalue')}"
    return -1, "unknown error"


def notebook_path(task: str) -> Path:
    if task not in config.NOTEBOOKS:
        raise ValueError(f"unknown task {task!r}; known: {', '.join(config.NOTEBOOKS)}")
    return config.ROOT / config.NOTEBOOKS[task]


def require_kernel(name: str = config.NOTEBOOK_KERNEL) -> None:
    """Fail early, with the fix, when the project's Jupyter kernel is not registered."""
    from jupyter_client.kernelspec import KernelSpecManager

    if name not in KernelSpecManager().find_kernel_specs():
        raise NotebookError(f"the Jupyter kernel {name!r} is not registered: run `make setup`, or "
                            f"`python -m ipykernel install --sys-prefix --name {name}` in the project's environment")


def execute(task: str, *, quick: bool, out_dir: Path | None = None,
            timeout: int | None = None) -> ReportResult:
    """Run one task's notebook; see the module docstring for where the results go."""
    require_kernel()
    source = notebook_path(task)
    nb = nbformat.read(source, as_version=4)
    client = NotebookClient(nb, timeout=timeout or config.NOTEBOOK_CELL_TIMEOUT_S,
                            kernel_name=config.NOTEBOOK_KERNEL,
                            resources={"metadata": {"path": str(config.ROOT)}})
    if quick:
        out_dir = Path(out_dir or tempfile.mkdtemp(prefix=f"cvtasks-{task}-"))
        executed = out_dir / source.name
    else:
        out_dir = config.REPORTS_DIR / task
        executed = source
    start = time.perf_counter()
    # progress bars stay out of the saved outputs (tqdm reads TQDM_DISABLE)
    with _env(**{config.QUICK_ENV: "1" if quick else "0", "TQDM_DISABLE": "1"}):
        try:
            client.execute()
        except CellExecutionError as err:
            index, what = _failed_cell(nb)
            keep = out_dir / f"{source.stem}.failed.ipynb"
            atomic_write_text(keep, nbformat.writes(nb))
            raise NotebookError(f"{source.name}: cell {index} failed: {what}\n"
                                f"(executed copy kept at {keep})") from err
    seconds = time.perf_counter() - start
    atomic_write_text(executed, nbformat.writes(nb))
    html = None
    if not quick:
        from nbconvert import HTMLExporter

        body, _ = HTMLExporter().from_notebook_node(nb)
        html = atomic_write_text(out_dir / f"{source.stem}.html", body)
        (out_dir / f"{source.stem}.failed.ipynb").unlink(missing_ok=True)
    return ReportResult(task, source, executed, html, seconds)


def execute_many(tasks: Iterable[str], *, quick: bool) -> list[ReportResult]:
    """Run several notebooks, all of them even when one fails; raise at the end if any did."""
    results, failures = [], []
    for task in tasks:
        try:
            result = execute(task, quick=quick)
        except NotebookError as err:
            failures.append(str(err))
            print(f"[report] FAILED {err}", flush=True)
            continue
        results.append(result)
        print(f"[report] {task}: {result.notebook.name} ran in {result.seconds:.0f} s"
              f" -> {result.executed}" + (f", {result.html}" if result.html else ""), flush=True)
    if failures:
        raise NotebookError("\n".join(failures))
    return results
