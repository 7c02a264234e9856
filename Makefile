# The two commands of the README:  make demo  and  make test.
# Both are idempotent: they install what is missing and reuse what is there.
VENV ?= .venv
PYTHON ?= python3
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: deps venv lint test test-fast demo bench clean

deps:
	@scripts/ensure-deps.sh

$(STAMP): pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	@$(PY) -m pip install -q -e '.[test,lint]' > $(VENV)/pip.log 2>&1 || { cat $(VENV)/pip.log; exit 1; }
	@touch $(STAMP)

venv: $(STAMP)

lint: venv
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy

test: deps venv
	$(VENV)/bin/pytest -q

# For iteration: everything but the long sweeps (marked slow).
test-fast: deps venv
	$(VENV)/bin/pytest -q -m 'not slow'

demo: venv
	@$(PY) scripts/demo.py

bench: deps venv
	@$(PY) bench/run.py

clean:
	rm -rf $(VENV) .demo
