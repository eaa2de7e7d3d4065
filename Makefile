# boatyard: `make run` starts the whole service locally; `make test` runs every test.
# Both set up what they need first (virtualenv, Debian packages when root).

PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAGE ?= dev
PYTEST_ARGS ?=
BENCH_ARGS ?=

.PHONY: run test test-fast lint bench package deploy system-deps venv clean

$(VENV)/.installed: requirements.txt requirements-worker.txt requirements-dev.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements-dev.txt
	touch $@

venv: $(VENV)/.installed

system-deps:
	bash scripts/install-system-deps.sh

## run: API + UI on http://127.0.0.1:8000, moto server, a worker, a demo registry (Ctrl-C stops all)
run: system-deps venv
	$(PY) -m devstack run

## test: lint, then unit, moto, real Docker + registry, end-to-end over HTTP, browser (CI=true: no skips)
test: system-deps venv lint
	$(PY) -m pytest $(PYTEST_ARGS)

## lint: ruff's lint rules and formatting, then mypy (strict on chalicelib/ and worker/); settings in pyproject.toml
lint: venv
	$(PY) -m ruff check .
	$(PY) -m ruff format --check .
	$(PY) -m mypy

## test-fast: the tiers that need neither Docker nor a browser
test-fast: venv
	$(PY) -m pytest tests/unit tests/aws $(PYTEST_ARGS)

## bench: benchmarks against the local stack; writes BENCHMARKS.md
bench: system-deps venv
	$(PY) -m bench $(BENCH_ARGS)

## package: deployable CloudFormation templates in build/infra (no AWS credentials needed)
package: venv
	PATH="$(CURDIR)/$(VENV)/bin:$$PATH" bash infra/package.sh $(STAGE)

## deploy: package and deploy STAGE to AWS, then upload the UI
deploy: venv
	PATH="$(CURDIR)/$(VENV)/bin:$$PATH" bash infra/deploy.sh $(STAGE)

clean:
	rm -rf build test-artifacts .pytest_cache .mypy_cache .ruff_cache
