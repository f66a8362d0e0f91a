"""The default test run executes every notebook in quick mode, on a temporary copy."""
import pytest

import config
from cvtasks import report


@pytest.mark.slow
@pytest.mark.parametrize("task", list(config.NOTEBOOKS))
def test_notebook_runs_in_quick_mode(task, tmp_path):
    before = report.notebook_path(task).read_bytes()
    result = report.execute(task, quick=True, out_dir=tmp_path)
    assert result.executed.exists()
    assert report.notebook_path(task).read_bytes() == before
