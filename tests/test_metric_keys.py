"""Each task's metric keys are declared once (cvtasks/<task>/keys.py): a stage records only the
keys it declares, the committed full run holds every declared key under exactly one stage, and
the findings (the notebook's summary and conclusions, README's block) read only declared keys."""
import json
from collections.abc import Mapping

import pytest

import config
from cvtasks.brands.task import MODELS as BRAND_MODELS
from cvtasks.metric_keys import MetricKeys, UndeclaredMetricError
from cvtasks.registry import TASK_CLASSES, task_class
from cvtasks.serve.summary import BENCH_FILES


class ReadLog(Mapping):
    """A metrics mapping that notes every key asked for (looked up, ``in``, ``get``), present or not."""

    def __init__(self, metrics):
        self._metrics, self.asked = metrics, set()

    def __getitem__(self, key):
        self.asked.add(key)
        return self._metrics[key]

    def __contains__(self, key):
        self.asked.add(key)
        return key in self._metrics

    def __iter__(self):
        return iter(self._metrics)

    def __len__(self):
        return len(self._metrics)


def committed(task):
    return json.loads((config.REPORTS_DIR / task / "metrics.json").read_text())


def test_patterns_take_one_name_part_per_star_and_one_listed_name_per_brace():
    keys = MetricKeys({"a": ("test/*/recall", "{val,test}/tpr", "?test/kl"), "b": ("data/n",)})
    assert keys.stages_of("test/shirt/recall") == ["a"] and keys.stages_of("test/shirt/val/recall") == []
    assert keys.stages_of("val/tpr") == ["a"] and keys.stages_of("train/tpr") == []
    assert keys.stages_of("time/b_s") == ["b"]                      # a stage's timer is its own
    keys.check("a", ["test/coat/recall"])
    with pytest.raises(UndeclaredMetricError, match="data/n"):
        keys.check("a", ["data/n"])                                 # declared, but by another stage
    # each listed name is a key of its own (writing val/tpr does not stand for test/tpr); ? is optional
    keys.check("a", ["test/kl"])
    assert keys.unwritten(["val/tpr", "time/a_s"]) == {"a": ["test/*/recall", "test/tpr"], "b": ["data/n", "time/b_s"]}


@pytest.mark.parametrize("task", list(TASK_CLASSES))
def test_every_stage_declares_its_keys(task):
    cls = task_class(task)
    assert cls.keys is not None and set(cls.keys.by_stage) == set(cls.stages)


@pytest.mark.parametrize("task", list(TASK_CLASSES))
def test_the_full_run_wrote_each_declared_key_under_one_stage(task):
    keys, written = task_class(task).keys, committed(task)
    owners = {k: keys.stages_of(k) for k in written}
    assert {k: v for k, v in owners.items() if len(v) != 1} == {}
    assert keys.unwritten(written) == {}


def test_a_stage_cannot_record_a_key_it_does_not_declare(tmp_path):
    cls = task_class("styles")
    task = cls(config.get("styles", quick=True, paths=config.Paths.under(tmp_path)), caller="cli",
               wandb_mode="disabled")
    with pytest.raises(UndeclaredMetricError, match="structure/ess"):
        task.record({"structure/ess": 1.0}, stage_name="data")
    task.record({"data/n_people": 3}, stage_name="data")
    assert task.metrics == {"data/n_people": 3}
    task.abandon()


def _service(task):
    if task != "fashion":
        return {}
    files = {name: config.REPORTS_DIR / "fashion" / f"{name}.json" for name in BENCH_FILES.values()}
    return {"service": {name: json.loads(p.read_text()) for name, p in files.items() if p.exists()}}


# the findings' tables that stages show, besides the summary and the conclusions
TABLES = {"brands": lambda f, m: f.comparison(m, (*BRAND_MODELS, "baseline")),
          "fashion": lambda f, m: (f.targets_table(m), f.train_test_table(m)),
          "search": lambda f, m: f.audit_table(m)}


@pytest.mark.parametrize("task", list(TASK_CLASSES))
def test_findings_read_only_declared_keys(task):
    cls = task_class(task)
    m = ReadLog(committed(task))
    cls.prose.summary(m, "run")
    cls.prose.conclusions(m, config.get(task), **_service(task))
    TABLES.get(task, lambda f, m: None)(cls.prose, m)
    assert m.asked, "the findings read no metric"
    assert sorted(k for k in m.asked if not cls.keys.stages_of(k)) == []
