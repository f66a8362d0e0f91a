"""README's measured block is exactly what the committed result files give."""
from cvtasks import readme


def test_readme_matches_the_committed_results():
    text = readme.config.ROOT.joinpath("README.md").read_text()
    block = text.split(readme.START, 1)[1].split(readme.END, 1)[0]
    assert block == "\n" + readme.measured_text(), "README is stale: run `python -m cvtasks readme`"


def test_missing_results_name_the_command(tmp_path):
    text = readme.measured_text(tmp_path)
    assert "`python -m cvtasks run spill`" in text and "`python -m cvtasks bench serve`" in text


def test_rewrite_replaces_only_the_block(tmp_path):
    page = tmp_path / "README.md"
    page.write_text(f"intro\n{readme.START}\nold\n{readme.END}\noutro\n")
    assert readme.rewrite(page, tmp_path) and not readme.rewrite(page, tmp_path)
    text = page.read_text()
    assert text.startswith("intro\n") and text.endswith("outro\n") and "old" not in text
