# The two commands of the README: `make reports` (the main job) and `make test`.
# Both set up what is missing first (scripts/setup.sh), idempotently.
VENV ?= .venv
PY := $(VENV)/bin/python
export VENV

.PHONY: setup test test-fast reports reports-quick lab repro monitor clean-cache

setup:
	@bash scripts/setup.sh

## run every test, including each notebook executed in quick mode
test: setup
	$(PY) -m pytest

## the tests without the slow ones (notebooks, long training)
test-fast: setup
	$(PY) -m pytest -m "not slow"

## execute all five notebooks on the embedded defaults; outputs in place, HTML in reports/
reports: setup
	$(PY) -m cvtasks report

## the same in quick mode, on temporary copies (a smoke run)
reports-quick: setup
	$(PY) -m cvtasks report --quick

## JupyterLab on the project's environment; open a notebook, its kernel is "Python (cvtasks)"
lab: setup
	$(VENV)/bin/jupyter lab --ip=127.0.0.1 --notebook-dir=.

## the Fashion pipeline (prepare -> train -> evaluate -> export) with DVC
repro: setup
	$(VENV)/bin/dvc repro

## the fashion service and a Prometheus scraping it, with the alert rules (Ctrl-C stops both)
monitor: setup
	$(PY) -m cvtasks monitor

clean-cache:
	rm -rf data/cache
