import subprocess
import sys

import config
from cvtasks import cli


def test_help_lists_the_commands():
    out = subprocess.run([sys.executable, "-m", "cvtasks", "--help"], capture_output=True, text=True,
                         cwd=config.ROOT, check=True).stdout
    for command in ("run", "report", "encoders"):
        assert command in out


def test_run_refuses_unknown_task(capsys):
    try:
        cli.main(["run", "cats"])
    except SystemExit as exit_:
        assert exit_.code == 2
    assert "invalid choice" in capsys.readouterr().err


def test_report_refuses_unknown_task(capsys):
    assert cli.main(["report", "cats"]) == 2
    assert "unknown task" in capsys.readouterr().err


def test_run_of_a_missing_task_module_says_so(monkeypatch, capsys):
    monkeypatch.setitem(cli.TASK_MODULES, "brands", "cvtasks.no_such_task_module")
    assert cli.main(["run", "brands", "--quick"]) == 2
    assert "not implemented yet" in capsys.readouterr().err


def test_quick_flag_is_exported_for_child_processes(monkeypatch):
    monkeypatch.delenv(config.QUICK_ENV, raising=False)
    monkeypatch.setitem(cli.TASK_MODULES, "brands", "cvtasks.no_such_task_module")
    cli.main(["run", "brands", "--quick"])
    import os
    assert os.environ[config.QUICK_ENV] == "1"
