# Two commands are all a new user needs: `make demo` and `make test`.
# Both create .venv and install the package with its dev tools on first use (idempotent).

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
EXAMPLE := examples/resume_ner

.PHONY: demo test lint services bench bench-quick fuzz clean

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check --upgrade pip
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -e '.[dev]'
	@touch $(STAMP)

## demo: the example's main job: a resumable, tracked sweep of a scikit-learn NER model (run it twice: the second run resumes and adds nothing)
demo: $(STAMP)
	cd $(EXAMPLE) && ../../$(BIN)/mlinfra config validate
	cd $(EXAMPLE) && ../../$(BIN)/mlinfra hpo --experiment resume_ner_baseline --stage demo
	cd $(EXAMPLE) && ../../$(BIN)/mlinfra report --experiment resume_ner_baseline --stage demo

## test: the whole suite: lint, types, layer contracts, then every test (slow ones included)
test: $(STAMP) lint services
	$(BIN)/python -m pytest

## services: start what the integration tests talk to (the system's PostgreSQL)
services:
	@if [ -z "$$MLINFRA_SKIP_POSTGRES" ] || [ -n "$$CI" ]; then scripts/ensure-postgres.sh; fi

lint: $(STAMP)
	$(BIN)/ruff check src tests bench
	$(BIN)/ruff format --check src tests bench
	$(BIN)/mypy
	$(BIN)/lint-imports

## bench: every benchmark, one markdown table (figure, peer measured in the same run, ratio, target); also written to bench-results.md and into docs/performance.md
bench: $(STAMP)
	$(BIN)/python bench/all.py --output bench-results.md --doc docs/performance.md

## bench-quick: the same with --quick (smaller sizes, fewer repetitions; about two minutes)
bench-quick: $(STAMP)
	$(BIN)/python bench/all.py --quick

## fuzz: the property tests (config, core, naming, paths) with 5,000 random examples each
fuzz: $(STAMP)
	HYPOTHESIS_PROFILE=fuzz $(BIN)/python -m pytest tests/config tests/core tests/naming tests/paths -q -p no:cacheprovider --timeout=3600

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
