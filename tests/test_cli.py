import os
import subprocess
import sys

import pytest

import config
from cvtasks import cli


def test_help_lists_the_commands():
    out = subprocess.run([sys.executable, "-m", "cvtasks", "--help"], capture_output=True, text=True,
                         cwd=config.ROOT, check=True).stdout
    for command in ("run", "report", "search", "encoders"):
        assert command in out


def test_run_refuses_unknown_task(capsys):
    with pytest.raises(SystemExit) as exit_:
        cli.main(["run", "cats"])
    assert exit_.value.code == 2
    assert "invalid choice" in capsys.readouterr().err


def test_report_refuses_unknown_task(capsys):
    assert cli.main(["report", "cats"]) == 2
    assert "unknown task" in capsys.readouterr().err


def test_every_task_has_its_task_class():
    assert set(cli.TASK_CLASSES) == set(config.NOTEBOOKS)
    for name in cli.TASK_CLASSES:
        assert cli.task_class(name).name == name


def test_quick_flag_reaches_the_config_without_touching_the_environment(monkeypatch, tmp_path):
    monkeypatch.delenv(config.QUICK_ENV, raising=False)
    seen = {}

    class Fake:
        def __init__(self, cfg, caller):
            seen["cfg"], seen["caller"] = cfg, caller
            self.metrics_file = tmp_path / "m.json"

        def run(self):
            return {"x/y": 1.0}

    monkeypatch.setattr(cli, "task_class", lambda name: Fake)
    assert cli.main(["run", "styles", "--quick", "--out", str(tmp_path)]) == 0
    assert seen["cfg"].quick and seen["caller"] == "cli" and seen["cfg"].paths.reports == tmp_path / "reports"
    assert config.QUICK_ENV not in os.environ


def test_bench_soak_takes_its_length_from_the_command_line(monkeypatch, tmp_path, capsys):
    from cvtasks import io
    from cvtasks.serve import loadtest

    seen = {}

    def fake_soak(quick, log_dir, seconds=None, trace_memory=False):
        seen.update(quick=quick, seconds=seconds, trace_memory=trace_memory)
        return {"duration_s": seconds, "windows": [], "memory_trace": [{"t_s": 0.0}] if trace_memory else None}

    monkeypatch.setattr(loadtest, "soak", fake_soak)
    monkeypatch.setattr(io, "metrics_path", lambda task, quick, name, **_: tmp_path / f"{name}.json")
    assert cli.main(["bench", "soak", "--quick", "--seconds", "1800"]) == 0
    assert seen == {"quick": True, "seconds": 1800.0, "trace_memory": False}
    assert '"duration_s": 1800.0' in (tmp_path / "soak.json").read_text()
    assert cli.main(["bench", "memory", "--quick", "--seconds", "60"]) == 0   # the soak with the heap traced
    assert seen["trace_memory"] and '"t_s": 0.0' in (tmp_path / "soak_memory.json").read_text()
    assert cli.main(["bench", "serve", "--seconds", "60"]) == 2
    assert "fixed schedule" in capsys.readouterr().err
