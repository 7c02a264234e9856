# The two commands of the README:  make demo  and  make test.
# Both are idempotent: they install what is missing and reuse what is there.
VENV ?= .venv
PYTHON ?= python3
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: deps venv test demo bench clean

deps:
	@scripts/ensure-deps.sh

$(STAMP): pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	@$(PY) -m pip install -q -e '.[test]' > $(VENV)/pip.log 2>&1 || { cat $(VENV)/pip.log; exit 1; }
	@touch $(STAMP)

venv: $(STAMP)

test: deps venv
	$(VENV)/bin/pytest -q

demo: venv
	@$(PY) scripts/demo.py

bench: deps venv
	@$(PY) bench/run.py

clean:
	rm -rf $(VENV) .demo
