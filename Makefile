# Makefile: the two commands a new user needs (make demo, make test) and the developer targets.
# Everything installs from PyPI into .venv and, for the C++ tests, from Debian with apt-get.

PYTHON       ?= python3
VENV         := .venv
PY           := $(VENV)/bin/python
PIP          := $(PY) -m pip --disable-pip-version-check -q
BUILD_DEPS   := scikit-build-core nanobind cmake ninja
TEST_DEPS    := cloudpickle pytest hypothesis pytest-timeout numpy
# The main venv also tests the async lane on uvloop; the other interpreters test plain asyncio.
EXTRA_DEPS   ?= uvloop
BENCH_DEPS   := loky joblib mpire aiohttp uvloop
CPP_BUILD    := build/cpp
JOBS         ?= 2
# Other interpreters that must build and pass (pyenv provides them here).
OTHER_PYTHONS ?= 3.12 3.13

.PHONY: demo test test-cpp test-python test-pythons build bench sanitize lint clean system-deps

demo: build
	$(VENV)/bin/multilane showdown

test: build test-cpp test-python test-pythons

$(VENV)/.ready: pyproject.toml Makefile
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PIP) install $(BUILD_DEPS) $(TEST_DEPS) $(EXTRA_DEPS)
	touch $@

build: $(VENV)/.ready
	$(PIP) install --no-build-isolation --no-deps .

# GoogleTest comes from Debian; install it when missing (CI and developers are root).
system-deps:
	@dpkg -s libgtest-dev >/dev/null 2>&1 || { apt-get update -qq && apt-get install -y -qq libgtest-dev; }

test-cpp: system-deps $(VENV)/.ready
	PATH=$(CURDIR)/$(VENV)/bin:$$PATH cmake -S cpp -B $(CPP_BUILD) -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo
	PATH=$(CURDIR)/$(VENV)/bin:$$PATH cmake --build $(CPP_BUILD) -j $(JOBS)
	ctest --test-dir $(CPP_BUILD) --output-on-failure --no-tests=error -j $(JOBS)

# pytest exits 5 when it collects nothing: make treats that as the failure it is.
test-python: build
	$(PY) -m pytest -q -p no:cacheprovider

# The same suite on the other supported interpreters, each in its own venv. One that is
# not installed is reported loudly, not failed: CI has them all (pyenv), users may not.
test-pythons:
	@for v in $(OTHER_PYTHONS); do \
	  py=$$(pyenv prefix $$v 2>/dev/null)/bin/python; \
	  test -x "$$py" || py=$$(command -v python$$v); \
	  if [ -z "$$py" ] || ! [ -x "$$py" ]; then \
	    echo "*** NOT TESTED on Python $$v: no interpreter found (pyenv install $$v) ***"; \
	    continue; \
	  fi; \
	  echo "=== Python $$v ($$py)"; \
	  $(MAKE) --no-print-directory VENV=.venv-$$v PYTHON=$$py EXTRA_DEPS= test-python || exit 1; \
	done

bench: build
	$(PIP) install $(BENCH_DEPS)
	@# Ray is a peer only where it installs; its rows say "not installed" otherwise.
	@$(PIP) install ray || echo "*** ray did not install: its benchmark rows are skipped ***"
	$(PY) benchmarks/run.py --output BENCHMARKS.md

# The C++ tests under ThreadSanitizer and AddressSanitizer (+UBSan), with a shorter stress.
sanitize: system-deps $(VENV)/.ready
	@for s in thread address; do \
	  PATH=$(CURDIR)/$(VENV)/bin:$$PATH cmake -S cpp -B build/cpp-$$s -G Ninja -DMULTILANE_SANITIZE=$$s && \
	  PATH=$(CURDIR)/$(VENV)/bin:$$PATH cmake --build build/cpp-$$s -j $(JOBS) && \
	  MULTILANE_STRESS_FRAMES=200000 ctest --test-dir build/cpp-$$s --output-on-failure --no-tests=error || exit 1; \
	done

lint: $(VENV)/.ready
	$(PIP) install ruff mypy
	$(VENV)/bin/ruff check src tests benchmarks
	$(VENV)/bin/mypy src/multilane

clean:
	rm -rf build .venv .venv-* BENCHMARKS.md.tmp
