# Both entry points do all set-up on a fresh machine: a virtualenv in .venv
# with every dependency, TensorFlow Privacy included (--no-deps, see README).
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: setup demo test test-all docs clean

$(STAMP): pyproject.toml setup.py
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e ".[dev]"
	$(BIN)/pip install --quiet --no-deps tensorflow-privacy==0.8.12
	touch $(STAMP)

setup: $(STAMP)

# Main job on the embedded default (scikit-learn digits, offline): train
# undefended vs AdaMixup, audit both, write the comparison to demo_out/.
demo: $(STAMP)
	$(BIN)/keras-adamixup demo --out demo_out

# The test suite (tests marked slow are skipped; `make test-all` runs them),
# in two worker processes (pytest-xdist): most tests are bound by one core.
test: $(STAMP)
	$(BIN)/python -m pytest -q -n 2 -m "not slow" --durations=10 tests

test-all: $(STAMP)
	$(BIN)/python -m pytest -q -n 2 tests

# The guide and the API reference (mkdocs.yml) into site/; warnings are errors.
DOCS_STAMP := $(VENV)/.docs-installed
$(DOCS_STAMP): $(STAMP)
	$(BIN)/pip install --quiet -e ".[docs]"
	touch $(DOCS_STAMP)

docs: $(DOCS_STAMP)
	$(BIN)/mkdocs build --strict --site-dir site

clean:
	rm -rf $(VENV) *.egg-info site
