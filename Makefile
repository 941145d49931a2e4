# The two commands that matter (README): `make demo` and `make test`.
# Both create .venv from the pinned set on first use.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: setup demo test lint

$(STAMP): requirements/pins-cpu.txt requirements/pins-nodeps.txt pyproject.toml scripts/setup.sh scripts/install_synth_deps.sh
	PY=$(PY) bash scripts/setup.sh
	touch $@

setup: $(STAMP)

demo: $(STAMP)
	$(BIN)/lcasr-jax demo

test: $(STAMP)
	$(BIN)/ruff check lcasr_jax convert tests benchmarks experiments scripts
	$(BIN)/python -m pytest -n 2 tests

lint: $(STAMP)
	$(BIN)/ruff check lcasr_jax convert tests benchmarks experiments scripts
