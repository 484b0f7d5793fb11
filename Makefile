# Each target bootstraps .venv from nothing (Python 3.11+ and the package registries only).
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-$(shell cat pyproject.toml layers/common/requirements.txt | cksum | cut -d' ' -f1)

.PHONY: dev test lint typecheck unit bench openapi deploy clean

$(STAMP): pyproject.toml layers/common/requirements.txt
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	@rm -f $(VENV)/.installed-*
	@touch $@

## make dev: the whole product offline on 127.0.0.1 (gateway :3000, provider sandbox :3001). Ctrl-C stops it.
dev: $(STAMP)
	$(BIN)/python -m infra.local

## make test: lint, type-check, then unit, integration and end-to-end tests.
test: lint typecheck
	$(BIN)/python -m pytest

# ruff includes the complexity gate (C901); lint-imports checks the import-layer contracts in pyproject.toml.
lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/lint-imports

# Each function folder is its own import root (as in Lambda), so each is checked on its own.
typecheck: $(STAMP)
	$(BIN)/mypy
	@for dir in functions/*/; do \
		name=$$(basename $$dir); \
		(cd $$dir && MYPYPATH=$(CURDIR)/layers/common $(CURDIR)/$(BIN)/mypy --config-file $(CURDIR)/pyproject.toml \
			--cache-dir $(CURDIR)/.mypy_cache/fn-$$name .) || exit 1; \
	done

unit: $(STAMP)
	$(BIN)/python -m pytest tests/unit

## make bench: cold starts, AWS calls per route, sync scheduler reads, calendar sync throughput/memory/DynamoDB cost;
## writes tests/bench/RESULTS.md (not part of make test). One benchmark: python -m tests.bench NAME.
bench: $(STAMP)
	$(BIN)/python -m tests.bench

## make openapi: regenerate the committed OpenAPI document from the code.
openapi: $(STAMP)
	$(BIN)/python -m tests.support.openapi_export

## make deploy: build and deploy with infra/samconfig.toml (needs the SAM CLI and AWS credentials).
deploy:
	sam build --config-file infra/samconfig.toml --template-file template.yaml && sam deploy --config-file infra/samconfig.toml

clean:
	rm -rf $(VENV) .aws-sam .mypy_cache .ruff_cache
