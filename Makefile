# Lapis — every target creates or refreshes .venv itself when needed.
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
PIP    := $(VENV)/bin/pip

.PHONY: demo test test-fast lint format bench clean

$(VENV)/.stamp-venv:
	$(PYTHON) -c 'import sys; assert sys.version_info >= (3, 11), "Lapis needs Python >= 3.11"'
	$(PYTHON) -m venv $(VENV)
	$(PIP) install --quiet --upgrade pip
	touch $@

# One stamp per extra; reinstall when pyproject.toml changes.
$(VENV)/.stamp-demo: pyproject.toml $(VENV)/.stamp-venv
	$(PIP) install --quiet -e '.[demo]'
	touch $@

$(VENV)/.stamp-dev: pyproject.toml $(VENV)/.stamp-venv
	$(PIP) install --quiet -e '.[dev]'
	touch $@

demo: $(VENV)/.stamp-demo
	$(PY) examples/demo.py

lint: $(VENV)/.stamp-dev
	$(VENV)/bin/ruff check lapis tests bench examples
	$(VENV)/bin/ruff format --check lapis tests bench examples
	$(VENV)/bin/mypy lapis

format: $(VENV)/.stamp-dev
	$(VENV)/bin/ruff check --fix lapis tests bench examples
	$(VENV)/bin/ruff format lapis tests bench examples

test: lint
	$(VENV)/bin/pytest -n 2 --dist loadgroup -q

test-fast: $(VENV)/.stamp-dev
	$(VENV)/bin/pytest -n 2 --dist loadgroup -q -x

# bench/serving.py drives the servers with wrk (a Debian package); install it when missing.
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

bench: $(VENV)/.stamp-dev
	$(PY) bench/tracking.py
	$(PY) bench/jobs.py
	command -v wrk >/dev/null || { $(SUDO) apt-get update -qq && $(SUDO) apt-get install -y wrk; }
	$(PY) bench/serving.py

clean:
	rm -rf $(VENV) .lapis-demo .pytest_cache .mypy_cache .ruff_cache
