# Two commands for a new user: `make run` and `make test`. Everything else is a step of those.
SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
PYTHON_BOOTSTRAP ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-$(shell sha1sum requirements.txt | cut -c1-12)
export PYTHONPATH := $(CURDIR):$(CURDIR)/src:$(CURDIR)/gen
export PATH := $(CURDIR)/$(VENV)/bin:$(PATH)

.PHONY: venv gen lint migrate run test test-unit bench bench-data db-start db-stop clean

$(STAMP): requirements.txt
	test -x $(PY) || $(PYTHON_BOOTSTRAP) -m venv $(VENV)
	$(PY) -m pip install -q --disable-pip-version-check --upgrade pip
	$(PY) -m pip install -q --disable-pip-version-check -r requirements.txt
	rm -f $(VENV)/.installed-* && touch $(STAMP)

venv: $(STAMP)

## Regenerate gen/ (committed) from protos/; tests/unit/test_generated_code.py fails when it is stale.
gen: venv
	$(PY) tools/gen_protos.py gen

lint: venv
	$(VENV)/bin/buf lint

## Starts the embedded PostgreSQL (unless DATABASE_URL is set) and applies migrations.
migrate: venv
	$(PY) -m billing.cli migrate

db-start: venv
	$(PY) -m billing.cli db-start

db-stop: venv
	$(PY) -m billing.cli db-stop

## gRPC on :50051, REST (Envoy) on :8080, embedded PostgreSQL unless DATABASE_URL is set.
run: venv gen
	$(PY) -m billing.cli run

test: venv lint
	$(PY) -m pytest -q

## Builds the benchmark datasets once (1,000 and 1,000,000 accounts; reused afterwards).
bench-data: venv
	$(PY) -m bench.datasets

## Throughput and latency against pgbench on the same database; see docs/performance.md.
bench: venv bench-data
	command -v wrk >/dev/null || apt-get install -y -q wrk
	$(PY) -m bench.run

test-unit: venv
	$(PY) -m pytest -q tests/unit

clean:
	rm -rf $(VENV) .data .pytest_cache .hypothesis
