# The two commands of the README:  make demo  and  make test.
# Both are idempotent: they install what is missing and reuse what is there.
VENV ?= .venv
PYTHON ?= python3
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
# Workers for the suite (pytest-xdist): most tests wait on Pebble, proxies and timers rather than
# the CPU, so three workers keep a 2-core machine busy (four cost more CPU than they save). TEST_WORKERS=0 runs it in one process.
TEST_WORKERS ?= 3
PYTEST := $(VENV)/bin/pytest -q -n $(TEST_WORKERS) --dist worksteal

.PHONY: deps venv lint test test-fast demo bench man clean

deps:
	@scripts/ensure-deps.sh

$(STAMP): pyproject.toml
	@echo "make: creating $(VENV) and installing certman with its test and lint tools (about 30 s; log in $(VENV)/pip.log)"
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	@$(PY) -m pip install -q -e '.[test,lint]' > $(VENV)/pip.log 2>&1 || { cat $(VENV)/pip.log; exit 1; }
	@touch $(STAMP)
	@echo "make: $(VENV) is ready"

venv: $(STAMP)

lint: venv
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy

test: deps venv
	@echo "make test: the whole suite against real Pebble, nginx, HAProxy, Caddy and BIND on loopback (a few minutes)"
	$(PYTEST)

# For iteration: everything but the long sweeps and multi-host fleet runs (marked slow).
test-fast: deps venv
	@echo "make test-fast: the suite without the long sweeps and multi-host fleet runs (marked slow)"
	$(PYTEST) -m 'not slow'

demo: venv
	@echo "make demo: issuing a certificate from a local Pebble into .demo/keystore"
	@$(PY) scripts/demo.py

# Man pages from the Click command tree into docs/man/ (tests/test_manpages.py checks they are current).
man: venv
	@echo "make man: writing docs/man/ from certman's command tree"
	@$(PY) scripts/man.py

bench: deps venv
	@$(PY) bench/run.py

clean:
	rm -rf $(VENV) .demo
