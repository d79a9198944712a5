# The two commands a newcomer needs: `make demo` and `make test`. Both create .venv and install on first use.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp

.PHONY: demo test test-slow install sync docs docs-offline

install: $(STAMP)

$(STAMP): settings.ini setup.py
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --disable-pip-version-check -q -e '.[dev]'
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/ppma demo

# Runs the notebooks' tests (slow cells skipped), then pytest. Writes nothing in the tree.
test: $(STAMP)
	$(BIN)/nbdev_test --n_workers 2
	PYTHONDONTWRITEBYTECODE=1 $(BIN)/pytest -q -p no:cacheprovider -m "not slow" tests

# The tests marked slow (longer runs of the same behaviours), for a machine with time to spare.
test-slow: $(STAMP)
	PYTHONDONTWRITEBYTECODE=1 $(BIN)/pytest -q -p no:cacheprovider -m slow tests

# For developers: clean the notebooks and export the package.
sync: $(STAMP)
	$(BIN)/nbdev_clean && $(BIN)/nbdev_export

# The docs site (needs Quarto, which is not on PyPI: install it from quarto.org on a machine with internet).
docs: $(STAMP)
	$(BIN)/nbdev_docs

# Offline HTML of every notebook, as it reads in JupyterLab, into _docs/offline/ (no Quarto needed).
docs-offline: $(STAMP)
	$(BIN)/pip install --disable-pip-version-check -q -e '.[docs]'
	$(BIN)/jupyter nbconvert --to html --output-dir _docs/offline nbs/*.ipynb
	# wrap long code lines instead of cutting them at the page edge
	sed -i 's|</head>|<style>pre { white-space: pre-wrap; overflow-wrap: anywhere; }</style></head>|' _docs/offline/*.html
