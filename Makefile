# The two commands a newcomer needs: `make demo` and `make test`. Both create .venv and install on first use.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp

.PHONY: demo test test-slow install sync lab docs docs-serve docs-check docs-quarto

install: $(STAMP)

$(STAMP): settings.ini setup.py
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --disable-pip-version-check -q -e '.[dev]'
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/ppma demo

# Lints (ruff, rules in pyproject.toml), runs the notebooks' tests (slow cells skipped), then pytest. Writes nothing.
test: $(STAMP)
	$(BIN)/ruff check --no-cache
	$(BIN)/nbdev_test --n_workers 2
	PYTHONDONTWRITEBYTECODE=1 $(BIN)/pytest -q -p no:cacheprovider -m "not slow" tests

# The tests marked slow (longer runs of the same behaviours), for a machine with time to spare.
test-slow: $(STAMP)
	PYTHONDONTWRITEBYTECODE=1 $(BIN)/pytest -q -p no:cacheprovider -m slow tests

# JupyterLab on the notebooks (the lab extra installed on first use); `make sync` after editing them.
lab: $(STAMP)
	$(BIN)/pip install --disable-pip-version-check -q -e '.[lab]'
	$(BIN)/jupyter lab --notebook-dir nbs

# For developers: clean the notebooks and export the package.
sync: $(STAMP)
	$(BIN)/nbdev_clean && $(BIN)/nbdev_export

# The docs site, offline: executes the notebooks, API entries from the exports, mkdocs-material. Into _docs/site.
docs: $(STAMP)
	$(BIN)/pip install --disable-pip-version-check -q -e '.[docs]'
	$(BIN)/python nbs/_mkdocs/build.py

# The site over http on 127.0.0.1:8000 (search needs http, or internet for its file:// shim).
docs-serve:
	$(BIN)/python -m http.server 8000 --bind 127.0.0.1 --directory _docs/site

# Links, images, an output on every module page, no "nan"/"yet" in tables or figure titles; screenshots (chromium).
docs-check:
	$(BIN)/python nbs/_mkdocs/check.py

# nbdev's own Quarto site, where Quarto is installed (quarto.org; not on PyPI or in Debian).
docs-quarto: $(STAMP)
	$(BIN)/nbdev_docs
