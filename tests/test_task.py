"""The staged task object: stage order, metrics written once, the W&B run owned and closed."""
import json
import math

import pytest

import config
from cvtasks.styles import StylesTask
from cvtasks.task import StageOrderError, Task, stage


class Toy(Task):
    name = "styles"    # a real task name, so that config.get works
    stages = ("first", "second")

    @stage
    def first(self):
        self.first_ = 1
        self.record({"toy/value": 1.0, "toy/label": "a"})
        return self.first_

    @stage
    def second(self, fail=False):
        self.require("first")
        if fail:
            raise RuntimeError("boom")
        self.record({"toy/nan": math.nan, "toy/double": 2 * self.first_})


def toy(tmp_path, **kw):
    cfg = config.get("styles", quick=True, paths=config.Paths.under(tmp_path))
    return Toy(cfg, caller="cli", wandb_mode="disabled", **kw)


def test_stages_need_their_predecessors_and_finish_needs_every_stage(tmp_path):
    t = toy(tmp_path)
    with pytest.raises(StageOrderError, match=r"run \.first\(\) first"):
        t.second()
    t.first()
    with pytest.raises(StageOrderError, match="second"):
        t.finish()
    t.second()
    metrics = t.finish()
    assert metrics["toy/double"] == 2 and "toy/nan" not in metrics and "time/first_s" in metrics
    assert json.loads(t.metrics_file.read_text()) == metrics
    assert t.finish() == metrics                                # safe to call twice
    with pytest.raises(StageOrderError, match="finished"):
        t.first()


def test_a_rerun_stage_replaces_its_metrics(tmp_path):
    t = toy(tmp_path)
    t.first()
    t.record({"toy/extra": 5.0}, stage_name="first")
    t.first()
    assert "toy/extra" not in t.metrics and t.metrics["toy/value"] == 1.0


def test_a_failed_run_is_closed_as_failed_and_writes_nothing(tmp_path, monkeypatch):
    t = toy(tmp_path)
    closed = []
    monkeypatch.setattr(t.tracker, "finish", lambda summary, failed=False: closed.append(failed))
    monkeypatch.setattr(Toy, "stages", ("first", "second"))
    monkeypatch.setattr(Toy, "second", stage(lambda self: (_ for _ in ()).throw(RuntimeError("boom"))))
    with pytest.raises(RuntimeError, match="boom"):
        t.run()
    assert closed == [True] and not t.metrics_file.exists()


def test_a_new_task_closes_the_unfinished_run_of_the_same_task(tmp_path):
    old = toy(tmp_path)
    new = toy(tmp_path)
    assert old.finished and old.tracker.finished and not new.finished
    new.abandon()


def test_stages_must_be_marked(tmp_path):
    class Bad(Toy):
        stages = ("first", "helper")

        def helper(self):
            pass

    with pytest.raises(TypeError, match="helper"):
        Bad(config.get("styles", quick=True, paths=config.Paths.under(tmp_path)), caller="cli",
            wandb_mode="disabled")


@pytest.mark.slow
def test_notebook_order_and_run_give_the_same_metrics(tmp_path):
    """One task driven stage by stage (as the notebook does), one through run() (as the CLI)."""
    cfg = config.get("styles", quick=True, paths=config.Paths.under(tmp_path, cache=config.CACHE_DIR))
    by_cells = StylesTask(cfg, caller="cli", wandb_mode="disabled")
    for name in StylesTask.stages:
        getattr(by_cells, name)()
    cells = by_cells.finish()
    whole = StylesTask(cfg, caller="cli", wandb_mode="disabled").run()
    assert set(cells) == set(whole)
    assert {k: v for k, v in cells.items() if not k.startswith("time/")} == \
        pytest.approx({k: v for k, v in whole.items() if not k.startswith("time/")})
