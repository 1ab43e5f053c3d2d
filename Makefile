# Two entry points for a fresh machine with Python 3.11+: `make run` and `make test`.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
export TF_CPP_MIN_LOG_LEVEL ?= 2

.PHONY: run test venv zoo bench clean-workspace

$(PY):
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "Python 3.11+ is required (found %s)" % sys.version.split()[0])'
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip

$(VENV)/.installed: pyproject.toml | $(PY)
	$(PY) -m pip install --quiet -e .
	touch $@

$(VENV)/.installed-test: pyproject.toml $(VENV)/.installed
	$(PY) -m pip install --quiet -e '.[test]'
	touch $@

venv: $(VENV)/.installed

run: $(VENV)/.installed
	$(PY) -m ui.serve

test: $(VENV)/.installed-test
	$(PY) -m pytest

# Rebuild the shipped sample models from the shipped/generated data (a few minutes on 2 cores).
zoo: $(VENV)/.installed
	$(VENV)/bin/workbench train --all --out models/zoo
	$(VENV)/bin/workbench train --all --noisy --out models/zoo

bench: $(VENV)/.installed
	$(VENV)/bin/workbench bench --json
