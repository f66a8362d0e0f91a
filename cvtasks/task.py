"""The staged task: one object per task run, shared by the notebook and the CLI.

A task subclass lists its stages in order (``stages``, a plain tuple of method names) and
marks each with ``@stage``. The notebook calls one stage per cell; ``run()`` (``python -m
cvtasks run <task>``) calls the same stages in the same order. A stage reads what earlier
stages left on the object (``self.data_``), leaves its own result there and returns it,
records its metrics with ``record`` and shows its figures and tables with ``show`` (displayed
in a notebook, logged to W&B in both). ``finish()`` writes reports/<task>/metrics.json once,
sets the W&B summary to exactly those metrics and closes the run; it is safe to call twice.

The task owns its W&B run: a failed ``run()`` closes it as failed; in a notebook, a run
that is never finished (a cell raised and the kernel stopped) is closed as failed when the
kernel exits, and re-running the set-up cell closes the previous run instead of leaving it
open.
"""
from __future__ import annotations

import functools
import math
import time
import uuid
import weakref
from collections.abc import Callable, Mapping
from typing import Any, ClassVar

import config
from cvtasks import showing
from cvtasks.io import check_metrics, metrics_path, write_metrics
from cvtasks.metric_keys import MetricKeys
from cvtasks.tracking import Tracker


class StageOrderError(RuntimeError):
    """A stage was called before the stage whose result it needs."""


def stage(method: Callable[..., Any]) -> Callable[..., Any]:
    """Mark a task method as a stage: it is timed (``time/<stage>_s``), and a re-run replaces
    the metrics it recorded before instead of adding to them."""
    name = method.__name__

    @functools.wraps(method)
    def wrapper(self: "Task", *args: Any, **kwargs: Any) -> Any:
        if self.finished:
            raise StageOrderError(f"this {self.name} run is finished; create a new task to run .{name}() again")
        for key in self._keys_by_stage.pop(name, ()):
            self.metrics.pop(key, None)
        self._current = name
        start = time.perf_counter()
        try:
            result = method(self, *args, **kwargs)
        finally:
            self._current = None
        self.record({f"time/{name}_s": time.perf_counter() - start}, stage_name=name)
        return result

    wrapper.is_stage = True  # type: ignore[attr-defined]
    return wrapper


class Task:
    """Base of the five task objects; see the module docstring."""

    name: ClassVar[str] = ""
    stages: ClassVar[tuple[str, ...]] = ()
    job_type: ClassVar[str] = "train"
    prose: ClassVar[Any] = None   # the task's findings module: summary(m, run) and conclusions(m, cfg, ...)
    keys: ClassVar[MetricKeys | None] = None   # the metric keys each stage may record (None: unchecked)
    _open: ClassVar[dict[str, "Task"]] = {}

    def __init__(self, cfg: config.TaskConfig | None = None, *, device: Any = None, caller: str | None = None,
                 wandb_mode: str | None = None):
        missing = [s for s in self.stages if not getattr(getattr(type(self), s, None), "is_stage", False)]
        if missing:
            raise TypeError(f"{type(self).__name__}: {missing} are listed as stages but not marked @stage")
        self.cfg = cfg if cfg is not None else config.get(self.name)
        self.device = device
        self.caller = caller or ("notebook" if showing.in_notebook() else "cli")
        self.metrics: dict[str, float] = {}
        self.finished = False
        self._keys_by_stage: dict[str, list[str]] = {}
        self._current: str | None = None
        self._summary_id = f"summary-{uuid.uuid4().hex}"
        previous = Task._open.pop(self.name, None)
        if previous is not None:   # a re-run set-up cell: close the run it leaves behind
            previous.abandon()
        self.tracker = Tracker(self.name, self.cfg, caller=self.caller, job_type=self.job_type,
                               mode=wandb_mode, wandb_dir=self.cfg.paths.wandb)
        Task._open[self.name] = self
        # closed as failed if the task is dropped or the process exits before finish()
        self._closer = weakref.finalize(self, _close_failed, self.tracker, self.metrics)
        if self.caller == "notebook":
            showing.show_markdown(self.run_card())
            showing.show_markdown("*The summary of this run appears here when its last cell has run.*",
                                  display_id=self._summary_id)

    # --- what stages use -----------------------------------------------------------------
    @property
    def quick(self) -> bool:
        return self.cfg.quick

    def require(self, *stage_names: str) -> None:
        """Raise StageOrderError unless each named stage has left its result (``<name>_``)."""
        for name in stage_names:
            if getattr(self, f"{name}_", None) is None:
                raise StageOrderError(f"{type(self).__name__}: run .{name}() first")

    def record(self, metrics: Mapping[str, Any], *, stage_name: str | None = None) -> None:
        """Add flat, slash-named, finite numbers to the run's metrics (NaN values are left out:
        a figure that cannot be computed is absent, not a number). A key the task's ``keys`` do not
        give to the recording stage raises UndeclaredMetricError."""
        clean = {k: v for k, v in metrics.items() if not (isinstance(v, float) and math.isnan(v))}
        clean = check_metrics(clean)
        owner = stage_name or self._current
        if self.keys is not None:
            self.keys.check(owner, clean)
        self.metrics.update(clean)
        if owner:
            self._keys_by_stage.setdefault(owner, []).extend(clean)

    def show(self, key: str, what: Any) -> None:
        """A matplotlib figure (or Axes), a DataFrame or Markdown text: shown in a notebook and logged to
        W&B under ``key`` (figures as the same PNG)."""
        import pandas as pd

        if hasattr(getattr(what, "figure", None), "savefig"):   # matplotlib Axes: show its figure
            what = what.figure
        if hasattr(what, "savefig"):
            png = showing.figure_png(what)
            if self.caller == "notebook":
                showing.show_png(png)
            if self.tracker.mode != "disabled":
                self.tracker.log_png(key, png)
        elif isinstance(what, pd.DataFrame):
            if self.caller == "notebook":
                showing.display(what)
            if self.tracker.mode != "disabled":
                self.tracker.log_table(key, what)
        elif isinstance(what, str):
            if self.caller == "notebook":
                showing.show_markdown(what)
        else:
            raise TypeError(f"show({key!r}): cannot show a {type(what).__name__}")

    def chart(self, kind: str, key: str, *args: Any, **kwargs: Any) -> None:
        """A native W&B chart (``kind``: confusion, roc_pr or curves; see Tracker.log_<kind>),
        for W&B only: the notebook shows the same data as a figure."""
        if self.tracker.mode != "disabled":
            getattr(self.tracker, f"log_{kind}")(key, *args, **kwargs)

    def examples(self, key: str, frame: Any, images: Mapping[str, Any]) -> None:
        """Per-example rows with pictures, for W&B only (a table of images reads better there
        than in a notebook, which shows the same examples as a figure)."""
        if self.tracker.mode != "disabled":
            self.tracker.log_table(key, frame, images=images)

    # --- running and finishing -----------------------------------------------------------
    def run(self) -> dict[str, float]:
        """Every stage in order, then finish(); the run is closed as failed if a stage raises."""
        try:
            for name in self.stages:
                getattr(self, name)()
        except BaseException:
            self.abandon()
            raise
        return self.finish()

    def finish(self) -> dict[str, float]:
        """Write metrics.json, set the W&B summary to it and close the run (once)."""
        if not self.finished:
            missing = [s for s in self.stages if f"time/{s}_s" not in self.metrics]
            if missing:
                raise StageOrderError(f"{type(self).__name__}: run .{missing[0]}() first "
                                      f"(stages not run yet: {', '.join(missing)})")
            write_metrics(self.name, self.metrics, quick=self.quick, reports_dir=self.cfg.paths.reports)
            self.tracker.finish(self.metrics)
            self._closer.detach()
            self.finished = True
            Task._open.pop(self.name, None)
            if self.caller == "notebook":
                showing.update_markdown(self.summary(), self._summary_id)
                shown = self.metrics_file
                shown = shown.relative_to(config.ROOT) if shown.is_relative_to(config.ROOT) else shown
                showing.show_markdown(f"Wrote `{shown}` ({len(self.metrics)} metrics); the W&B run "
                                      f"`{self.tracker.name}` is closed ({self.tracker.mode}).")
        return dict(self.metrics)

    def abandon(self) -> None:
        """Close the W&B run as failed, without writing metrics (a stage failed, or the run
        was left unfinished)."""
        if not self.finished:
            self.finished = True
            self._closer.detach()
            _close_failed(self.tracker, self.metrics)
            if Task._open.get(self.name) is self:
                Task._open.pop(self.name)

    @property
    def metrics_file(self):
        return metrics_path(self.name, self.quick, reports_dir=self.cfg.paths.reports)

    # --- what the notebook shows around the stages ---------------------------------------
    def run_card(self) -> str:
        mode = "quick (small sizes, few epochs)" if self.quick else "full"
        rows = {"task": self.name, "run": mode, **self.tracker.describe()}
        return "**This run**\n\n" + showing.key_value_markdown(rows)

    def summary(self) -> str:
        """What was done and the headline figures, from this run's metrics (Markdown): the task's
        ``prose.summary``, or a count of the metrics."""
        if self.prose is None:
            return f"**{self.name}**: {len(self.metrics)} metrics in `{self.metrics_file.name}`."
        return self.prose.summary(self.metrics, self.tracker.name)

    def conclusions(self) -> Any:
        """The conclusions, built from this run's metrics (Markdown for the notebook) by the task's
        ``prose.conclusions`` (with ``conclusion_inputs()``, what else it reads)."""
        from IPython.display import Markdown   # IPython: only a notebook shows this

        if self.prose is None:
            return Markdown(self.summary())
        return Markdown(self.prose.conclusions(self.metrics, self.cfg, **self.conclusion_inputs()))

    def conclusion_inputs(self) -> dict[str, Any]:
        """What a task's conclusions read besides its metrics and config (none by default)."""
        return {}


def _close_failed(tracker: Tracker, metrics: dict[str, float]) -> None:
    tracker.finish(metrics, failed=True)
