# rbcore: two commands do everything on a fresh machine with Python 3.11 and make.
#   make run   - the main job: every numbered notebook, headless, default profile
#   make test  - lint, unit tests and every notebook on the smoke profile
# Both create .venv and install the package the first time, and again only when
# pyproject.toml changes.

PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed
PROFILE ?= default

export PATH := $(abspath $(VENV))/bin:$(PATH)

.PHONY: install run smoke paper test lint format bench clean

install: $(STAMP)

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e ".[dev]"
	touch $(STAMP)

run: $(STAMP)
	$(PY) -m rbcore.notebooks --profile $(PROFILE)

smoke: $(STAMP)
	$(PY) -m rbcore.notebooks --profile smoke

paper: $(STAMP)
	$(PY) -m rbcore.notebooks --profile paper

test: $(STAMP) lint
	$(PY) -m pytest

lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

format: $(STAMP)
	$(VENV)/bin/ruff format .
	$(VENV)/bin/ruff check --fix .

bench: $(STAMP)
	for b in benchmarks/bench_*.py; do echo "== $$b"; $(PY) $$b || exit 1; done

clean:
	rm -rf build .pytest_cache .ruff_cache
