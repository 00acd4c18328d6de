# Two commands for a new user: `make run` and `make test`. Everything else is a step of those.
SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
PYTHON_BOOTSTRAP ?= python3
VENV := .venv
PY := $(VENV)/bin/python
BILLING := $(VENV)/bin/billing
# The local stack (devstack/: embedded PostgreSQL, Envoy's config, the Stripe stand-in, the demo), outside the wheel.
BILLING_DEV := $(VENV)/bin/billing-dev
CHROMIUM := /usr/bin/chromium
# `make image`'s tools (Debian's): buildah builds the image, podman runs it (tests), debootstrap makes its root.
BUILDAH := /usr/bin/buildah
# Debian's pgbouncer: the suite starts its own, in transaction mode (testkit/pgbouncer.py).
PGBOUNCER := /usr/sbin/pgbouncer
STAMP := $(VENV)/.installed-$(shell cat requirements.txt pyproject.toml devstack/pyproject.toml | sha1sum | cut -c1-12)
# billing is installed into the venv (editable); the repo root is for `bench.`, `tests.` and `testkit.`.
export PYTHONPATH := $(CURDIR)
export PATH := $(CURDIR)/$(VENV)/bin:$(PATH)
# npm ci ran when this is newer than the lock file (`make gen` needs ts-proto, `make test-ts` the rest).
NODE_MODULES := clients/node_modules/.package-lock.json

.PHONY: venv gen lint migrate run demo console image test test-unit test-ts bench bench-data bench-legacy db-stop clean

$(STAMP): requirements.txt pyproject.toml devstack/pyproject.toml
	test -x $(PY) || $(PYTHON_BOOTSTRAP) -m venv $(VENV)
	$(PY) -m pip install -q --disable-pip-version-check --upgrade pip
	$(PY) -m pip install -q --disable-pip-version-check -r requirements.txt
	$(PY) -m pip install -q --disable-pip-version-check --no-deps -e . -e ./devstack
	rm -f $(VENV)/.installed-* && touch $(STAMP)

venv: $(STAMP)

## Regenerate gen/ and clients/typescript/src/generated/ (both committed) from protos/: Python stubs and
## Envoy's descriptor set, and the REST JSON's TypeScript types (ts-proto, an npm devDependency);
## tests/unit/test_generated_code.py fails when either is stale. docs/configuration.md from the settings'
## table of variables (tests/unit/test_configuration_doc.py fails when it is stale); deploy/'s ConfigMaps from
## that table and envoy.yaml (tools/gen_k8s_config.py; tests/unit/test_k8s_manifests.py fails when stale).
gen: venv $(NODE_MODULES)
	$(PY) tools/gen_protos.py
	$(PY) tools/gen_config_doc.py
	$(PY) tools/gen_k8s_config.py

## buf lint (protos), and mypy holding the adapters to the ports (pyproject.toml [tool.mypy]).
lint: venv
	$(VENV)/bin/buf lint
	$(VENV)/bin/mypy

## Starts the embedded PostgreSQL (unless DATABASE_URL is set) and applies migrations.
migrate: venv
	$(BILLING_DEV) migrate

db-stop: venv
	$(BILLING_DEV) db-stop

## gRPC on :50051, REST (Envoy) on :8080, the demo app on :3000, the operator console on
## http://127.0.0.1:8081/console/ (Envoy reads its files at start), embedded PostgreSQL unless DATABASE_URL is set.
run: venv gen demo console
	$(BILLING_DEV) run

# test-ts first: it builds the client that tests/e2e/test_typescript_client_live.py runs against the stack;
# the demo and Chromium are for tests/e2e/test_browser_story.py, the console for Envoy's /console/ routes
# and tests/e2e/test_console_story.py; buildah, podman and debootstrap for tests/e2e/test_container_image.py
# (it builds the image when its inputs changed: ~75 s with an empty image cache, ~20 s with it, else ~0);
# pgbouncer for the suites run through a transaction-mode pooler. Serial: on two pytest-xdist workers
# (`pytest -n 2 --dist loadfile` works, ~5 min instead of ~9) the fault tests' timing (kill -9 and a
# database restart under load) broke once in three runs.
test: venv lint test-ts demo console $(CHROMIUM) $(BUILDAH) $(PGBOUNCER)
	BILLING_REQUIRE_BROWSER=1 BILLING_REQUIRE_IMAGE=1 BILLING_REQUIRE_PGBOUNCER=1 $(PY) -m pytest -q

## The server's OCI image, billing:<version> in local containers storage (podman runs it; `buildah push` sends
## it to a registry), without any registry: Debian 12's minbase root filesystem (debootstrap, cached in
## ~/.cache/billing-image or BILLING_IMAGE_CACHE) plus the project's wheel and its runtime dependencies' wheels
## downloaded on the host. deploy/ holds the Kubernetes manifests that run it (deploy/README.md).
image: venv $(BUILDAH)
	$(PY) tools/build_image.py

$(BUILDAH):
	apt-get update -q && apt-get install -y -q buildah podman debootstrap runc

## The TypeScript client (clients/typescript), the React package (clients/react) and the operator
## console (clients/console): npm ci when clients/node_modules is missing or older than the lock file,
## then tsc (strict), node's test runner (~5 s) and vitest with jsdom (~3 s each).
$(NODE_MODULES): clients/package-lock.json clients/package.json clients/typescript/package.json clients/react/package.json \
		clients/demo/package.json clients/console/package.json
	command -v npm >/dev/null || { apt-get update -q && apt-get install -y -q nodejs npm; }
	cd clients && npm ci --no-audit --no-fund --loglevel=error
	touch $@

test-ts: $(NODE_MODULES)
	cd clients/typescript && npm test --silent
	cd clients/react && npm test --silent
	cd clients/console && npm test --silent

## The demo app (clients/demo): tsc (strict), then Vite into clients/demo/dist, which `make run` serves
## (devstack.demo_server); built again when a source of it, the client or the React package changes.
DEMO_DIST := clients/demo/dist/index.html
DEMO_SOURCES := $(shell find clients/demo/src clients/typescript/src clients/react/src -type f 2>/dev/null) \
	clients/demo/index.html clients/demo/vite.config.ts clients/demo/tsconfig.json
$(DEMO_DIST): $(NODE_MODULES) $(DEMO_SOURCES)
	cd clients/demo && npm run build --silent

demo: $(DEMO_DIST)

## The operator console (clients/console): tsc (strict), then Vite into clients/console/dist with fixed file
## names, which Envoy serves on the internal listener (envoy.yaml: /console/ routes, direct responses read
## at start); built again when a source of it or of the client changes.
CONSOLE_DIST := clients/console/dist/index.html
CONSOLE_SOURCES := $(shell find clients/console/src clients/console/public clients/typescript/src -type f 2>/dev/null) \
	clients/console/index.html clients/console/vite.config.ts clients/console/tsconfig.json
$(CONSOLE_DIST): $(NODE_MODULES) $(CONSOLE_SOURCES)
	cd clients/console && npm run build --silent

console: $(CONSOLE_DIST)

## Debian's Chromium, driven headless by playwright-core in the browser test (no browser download);
## the emoji font draws the history's icons in its screenshots.
$(CHROMIUM):
	apt-get update -q && apt-get install -y -q chromium fonts-noto-color-emoji

## Debian's pgbouncer, for the tests and the bench: each starts its own process (its config in a temporary folder);
## the package's system service is left disabled.
$(PGBOUNCER):
	apt-get update -q && apt-get install -y -q pgbouncer
	if command -v systemctl >/dev/null; then systemctl disable --now pgbouncer >/dev/null 2>&1 || true; fi

## Builds the benchmark datasets once (1,000 and 1,000,000 accounts; reused afterwards).
bench-data: venv
	$(PY) -m bench.datasets

## Throughput and latency against pgbench on the same database; see docs/performance.md.
bench: venv bench-data $(PGBOUNCER)
	command -v wrk >/dev/null || apt-get install -y -q wrk
	$(PY) -m bench.run

## The legacy migration alone (1,000,000 generated rows against plain COPY; make bench runs it too).
bench-legacy: venv
	$(PY) -m bench.legacy_migration

test-unit: venv
	$(PY) -m pytest -q tests/unit

clean:
	rm -rf $(VENV) .data .pytest_cache .hypothesis
