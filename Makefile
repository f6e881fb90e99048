# Lapis — every target creates or refreshes .venv itself when needed.
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
PIP    := $(VENV)/bin/pip

.PHONY: demo test test-fast lint format bench clean studio-assets browser dist docker-engine ssh-server fuse

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

# The studio's front-end libraries (htmx, uPlot) come from the npm registry through
# package.json / package-lock.json and are copied into the package; never by hand.
STUDIO_VENDOR := lapis/server/studio/static/vendor
$(STUDIO_VENDOR)/.stamp: package.json package-lock.json
	@command -v npm >/dev/null || { echo "npm is needed to build the studio's assets (Debian: apt-get install npm)"; exit 1; }
	npm ci --no-audit --no-fund --loglevel=error
	mkdir -p $(STUDIO_VENDOR)
	cp node_modules/htmx.org/dist/htmx.min.js node_modules/uplot/dist/uPlot.iife.min.js \
	   node_modules/uplot/dist/uPlot.min.css $(STUDIO_VENDOR)/
	touch $@

studio-assets: $(STUDIO_VENDOR)/.stamp

# The browser tests drive Debian's Chromium (Playwright cannot download browsers here).
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
browser:
	@command -v chromium >/dev/null || { $(SUDO) apt-get update -qq && $(SUDO) apt-get install -y -qq chromium; }

# Remote ro_mount inputs are FUSE mounts (lapis/compute/fuse_mount.py): libfuse 2.
fuse:
	@ldconfig -p | grep -q 'libfuse\.so\.2' || { $(SUDO) apt-get update -qq && $(SUDO) apt-get install -y -qq libfuse2; } || true

# The ssh node provider is tested against sshd in network namespaces (tests/netkit.py).
ssh-server:
	@test -x /usr/sbin/sshd || { $(SUDO) apt-get update -qq && $(SUDO) apt-get install -y -qq openssh-server; } || true

# A wheel and an sdist in dist/ that carry the studio's assets: `pip install` of the
# wheel gives a working studio without npm (scripts/build_dist.py checks they are in).
dist: $(VENV)/.stamp-dev studio-assets
	$(PY) scripts/build_dist.py dist

# Jobs with a Docker build context (environment: {build: …}) run in containers where a
# Docker engine answers. The tests of that path need one: installed and started here when
# missing (Debian's docker.io, the vfs storage driver; busybox-static builds the test
# image with no registry to pull from). Where that fails, those tests skip saying why.
docker-engine:
	@command -v busybox >/dev/null || { $(SUDO) apt-get update -qq && $(SUDO) apt-get install -y -qq busybox-static; } || true
	@docker info >/dev/null 2>&1 || { \
	  command -v dockerd >/dev/null || { $(SUDO) apt-get update -qq && $(SUDO) apt-get install -y -qq docker.io; }; \
	  ($(SUDO) dockerd --storage-driver vfs --iptables=false --bridge=none >/tmp/lapis-dockerd.log 2>&1 &); \
	  for i in $$(seq 1 30); do docker info >/dev/null 2>&1 && break; sleep 1; done; \
	  docker info >/dev/null 2>&1 || echo "NOTE: no Docker engine could be started (see /tmp/lapis-dockerd.log): the container-environment tests will skip"; \
	} || true

demo: $(VENV)/.stamp-demo studio-assets
	$(PY) examples/demo.py

lint: $(VENV)/.stamp-dev
	$(VENV)/bin/ruff check lapis tests bench examples scripts
	$(VENV)/bin/ruff format --check lapis tests bench examples scripts
	$(VENV)/bin/mypy lapis
	$(VENV)/bin/lint-imports

format: $(VENV)/.stamp-dev
	$(VENV)/bin/ruff check --fix lapis tests bench examples scripts
	$(VENV)/bin/ruff format lapis tests bench examples scripts

# The coverage report covers the test processes and every Python process they start
# (servers, supervisors, CLI runs): [tool.coverage.run] in pyproject.toml.
test: lint studio-assets browser docker-engine ssh-server fuse
	rm -f .coverage .coverage.*
	$(VENV)/bin/pytest -n 2 --dist loadgroup -q --durations=25 --cov=lapis --cov-report=term

test-fast: $(VENV)/.stamp-dev
	$(VENV)/bin/pytest -n 2 --dist loadgroup -q -x

# bench/serving.py drives the servers with wrk (a Debian package); installed when missing.

bench: $(VENV)/.stamp-dev studio-assets fuse  # studio-assets: npm ci, which brings Azurite for bench/data.py
	$(PY) bench/tracking.py
	$(PY) bench/jobs.py
	command -v wrk >/dev/null || { $(SUDO) apt-get update -qq && $(SUDO) apt-get install -y wrk; }
	$(PY) bench/serving.py
	$(PY) bench/studio.py
	$(PY) bench/load.py
	$(PY) bench/cluster.py
	$(PY) bench/data.py
	$(PY) bench/pipelines.py
	$(PY) bench/workstations.py

clean:
	rm -rf $(VENV) .lapis-demo .pytest_cache .mypy_cache .ruff_cache node_modules $(STUDIO_VENDOR) test-results
