# tierctl — the two commands a newcomer needs: `make demo` and `make test`.
# The Makefile bootstraps its own virtual environment (.venv) from pyproject.toml.

PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
DEMO_AS_OF := 2026-11-24

.PHONY: help install demo test test-fast lint bench bench-quick clean samples

help:
	@echo "make demo   - install into .venv and score the sample export"
	@echo "make test   - install and run the whole test suite"
	@echo "make bench  - speed and memory figures (large generated inputs; takes minutes)"
	@echo "make lint   - ruff and mypy"

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e ".[dev]"
	$(BIN)/python -m compileall -q tierctl
	@touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(BIN)/tierctl score sample_data/shortage.xlsx --as-of $(DEMO_AS_OF) --dry-run

# the suite on every core (pytest-xdist; TEST_WORKERS=0 runs it in one process), with
# bytecode caching on even where PYTHONDONTWRITEBYTECODE is set: otherwise every worker
# compiles and assertion-rewrites all test modules again (about 7 s CPU each)
TEST_WORKERS ?= auto
test: $(STAMP)
	PYTHONDONTWRITEBYTECODE= $(BIN)/python -m pytest -n $(TEST_WORKERS) --dist loadgroup

test-fast: $(STAMP)
	$(BIN)/python -m pytest -m "not slow" -x

lint: $(STAMP)
	$(BIN)/ruff check tierctl tests bench sample_data
	$(BIN)/mypy tierctl

# the editable install leaves tierctl's own modules uncompiled: compile them first so that
# no timed process compiles source (where PYTHONDONTWRITEBYTECODE is set, every one would)
bench: $(STAMP)
	$(BIN)/python -m compileall -q tierctl
	$(BIN)/python bench/run.py

bench-quick: $(STAMP)
	$(BIN)/python -m compileall -q tierctl
	$(BIN)/python bench/run.py --quick

samples: $(STAMP)
	$(BIN)/python sample_data/generate.py

clean:
	rm -rf $(VENV) .pytest_cache build *.egg-info
