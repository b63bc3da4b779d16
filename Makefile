# QuantumVault profit share. The two commands: `make run` and `make test`.
PYTHON_VERSION ?= 3.11
UV ?= $(shell command -v uv 2>/dev/null || echo $(HOME)/.local/bin/uv)
VENV := .venv
PY := $(VENV)/bin/python
# Tests run on PostgreSQL (locking and SKIP LOCKED need it). Override to point elsewhere.
TEST_DATABASE_URL ?= postgres://postgres@127.0.0.1:5432/quantumvault
PYTEST_ARGS ?=

.PHONY: venv venv-run test run localnet lint bench clean

$(UV):
	python3 -m pip install --quiet --user uv || python3 -m pip install --quiet uv

# Everything, test tools included (make test).
venv: $(VENV)/.synced

$(VENV)/.synced: pyproject.toml uv.lock | $(UV)
	$(UV) sync --locked --python $(PYTHON_VERSION)
	@touch $@ $(VENV)/.synced-run

# What the product needs to run (make run): no test tools (Playwright alone is ~160 MB), so a
# first install is quicker; --inexact keeps test tools a previous `make test` installed.
venv-run: $(VENV)/.synced-run

$(VENV)/.synced-run: pyproject.toml uv.lock | $(UV)
	$(UV) sync --locked --no-dev --inexact --python $(PYTHON_VERSION)
	@touch $@

test: venv
	DATABASE_URL=$(TEST_DATABASE_URL) $(PY) -m pytest $(PYTEST_ARGS)

localnet: venv-run
	$(PY) manage.py localnet

# make run is the development product: DEBUG on (development secrets, the demo) for its processes.
run localnet: export QV_DEBUG = 1

run: venv-run
	$(PY) manage.py migrate --noinput
	$(PY) manage.py run_product

# ruff, then the layering contracts in pyproject.toml (import-linter; docs/design.md, "Layering").
lint: venv
	$(VENV)/bin/ruff check .
	$(VENV)/bin/lint-imports --no-logo

bench: venv
	$(PY) benchmarks/chain.py

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache
