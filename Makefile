# Makefile: the two commands a new user needs (make demo, make test) and the developer targets.
# Everything installs from PyPI into .venv and, for the C++ tests, from Debian with apt-get.

SHELL        := /bin/bash
PYTHON       ?= python3
VENV         := .venv
PY           := $(VENV)/bin/python
# Packages are byte-compiled at install, as pip does by default. Not with --no-compile: in
# an environment with PYTHONDONTWRITEBYTECODE=1 (this one has it) no .pyc is ever written
# then, and every worker compiled multilane and NumPy from source at its start: the 3.11
# suite took 7.5 min instead of 5.4.
PIP          := $(PY) -m pip --disable-pip-version-check -q
INSTALL      := $(PIP) install
BUILD_DEPS   := scikit-build-core nanobind cmake ninja
TEST_DEPS    := cloudpickle pytest hypothesis pytest-timeout numpy joblib
# The main venv also tests the async lane on uvloop, the progress bars on tqdm and rich,
# the showdown's plot on matplotlib, the joblib backend under scikit-learn and the cluster
# lane on Dask and Ray; the other interpreters test plain asyncio, the plain progress line
# and the showdown's message that --plot needs matplotlib.
EXTRA_DEPS   ?= uvloop tqdm rich matplotlib scikit-learn dask[distributed] ray
LINT_DEPS    := ruff mypy
BENCH_DEPS   := loky joblib mpire aiohttp uvloop dask[distributed]
CPP_BUILD    := build/cpp
JOBS         ?= 2
PYTEST_ARGS  ?=
# Other interpreters that must build and pass (pyenv provides them here).
OTHER_PYTHONS ?= 3.12 3.13

.PHONY: demo test test-cpp test-python test-pythons build builds-other build-cpp build-fuzz \
	run-python run-pythons bench bench-compare sanitize fuzz lint clean system-deps

demo: build
	$(VENV)/bin/multilane showdown

# First everything the tests need is installed and built, all at once: the venvs are
# mostly downloads, the builds compile, and side by side they take about as long as the
# compiles alone. Then the suites run one after another, on a machine doing nothing else.
# The fuzzers run in the first phase: they stop after their time whatever the load.
test:
	$(MAKE) --no-print-directory -j6 build builds-other build-cpp lint fuzz FUZZ_SECONDS=10
	$(MAKE) --no-print-directory test-cpp run-python run-pythons

# The venv in two steps: the build tools (the C++ builds start once they are there),
# then what the tests need (mostly downloads: Ray, Dask and scikit-learn take a minute).
$(VENV)/.tools: pyproject.toml Makefile
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(INSTALL) $(BUILD_DEPS)
	touch $@

$(VENV)/.ready: $(VENV)/.tools
	$(INSTALL) $(TEST_DEPS) $(LINT_DEPS) $(EXTRA_DEPS)
	touch $@

build: $(VENV)/.ready
	$(INSTALL) --no-build-isolation --no-deps .

# The interpreter of Python version $$v in $$py: pyenv's, else pythonX.Y on the PATH;
# if there is none, says so and runs $(1) (continue, or exit 0).
FIND_PYTHON = py=$$(pyenv prefix $$v 2>/dev/null)/bin/python; \
	  test -x "$$py" || py=$$(command -v python$$v); \
	  if [ -z "$$py" ] || ! [ -x "$$py" ]; then \
	    echo "*** NOT TESTED on Python $$v: no interpreter found (pyenv install $$v) ***"; \
	    $(1); \
	  fi

# The venvs of the other interpreters, built (see test-pythons); side by side under -j.
builds-other: $(addprefix build-python-,$(OTHER_PYTHONS))

build-python-%:
	@v=$*; $(call FIND_PYTHON,exit 0); \
	  $(MAKE) --no-print-directory VENV=.venv-$$v PYTHON=$$py EXTRA_DEPS= build

# From Debian, when missing (CI and developers are root): GoogleTest for the C++ tests,
# clang and its sanitizer runtime for the fuzzers. One apt-get: two at once would fight
# over dpkg's lock.
system-deps:
	@dpkg -s libgtest-dev libclang-rt-14-dev >/dev/null 2>&1 && command -v clang++ >/dev/null || \
	  { apt-get update -qq && apt-get install -y -qq libgtest-dev clang libclang-rt-14-dev; }

build-cpp: system-deps $(VENV)/.tools
	PATH=$(CURDIR)/$(VENV)/bin:$$PATH cmake -S cpp -B $(CPP_BUILD) -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo
	PATH=$(CURDIR)/$(VENV)/bin:$$PATH cmake --build $(CPP_BUILD) -j $(JOBS)

test-cpp: build-cpp
	ctest --test-dir $(CPP_BUILD) --output-on-failure --no-tests=error -j $(JOBS)

# pytest exits 5 when it collects nothing: make treats that as the failure it is.
test-python: build
	$(MAKE) --no-print-directory run-python

run-python:
	$(PY) -m pytest -q -p no:cacheprovider $(PYTEST_ARGS)

# The same suite on the other supported interpreters, each in its own venv, but for the
# tests marked heavy (soaks, workers killed during a map, a 2 GiB array, the benchmark
# harness, the examples end to end: ~1.5 min, about the OS or the whole program rather
# than the Python version; pyproject.toml). One that is not installed is reported loudly, not failed:
# CI has them all (pyenv), users may not.
test-pythons: builds-other
	$(MAKE) --no-print-directory run-pythons

run-pythons:
	@for v in $(OTHER_PYTHONS); do \
	  $(call FIND_PYTHON,continue); \
	  echo "=== Python $$v ($$py)"; \
	  $(MAKE) --no-print-directory VENV=.venv-$$v PYTHON=$$py EXTRA_DEPS= \
	    PYTEST_ARGS='-m "not heavy"' run-python || exit 1; \
	done

bench: build
	$(INSTALL) $(BENCH_DEPS)
	@# Ray is a peer only where it installs; its rows say "not installed" otherwise.
	@$(INSTALL) ray || echo "*** ray did not install: its benchmark rows are skipped ***"
	$(PY) benchmarks/run.py --output BENCHMARKS.md

# The pool and lane scenarios on an older commit and on this tree, interleaved (new/old
# ratios): `make bench-compare BASE=<rev>`.
BASE ?= HEAD~1
bench-compare: build
	$(PY) benchmarks/compare_commits.py $(BASE)

# libFuzzer targets (cpp/fuzz/: the ring and the attachment table fed arbitrary bytes),
# built with clang, AddressSanitizer and UBSan, each run for FUZZ_SECONDS. A crash leaves
# its input in build/cpp-fuzz/ and fails the target. `make test` runs them briefly.
FUZZ_SECONDS ?= 120
FUZZ_TARGETS := fuzz_ring fuzz_attachment
build-fuzz: system-deps $(VENV)/.tools
	PATH=$(CURDIR)/$(VENV)/bin:$$PATH CXX=clang++ cmake -S cpp -B build/cpp-fuzz -G Ninja \
	  -DMULTILANE_FUZZ=ON -DMULTILANE_BUILD_TESTS=OFF
	PATH=$(CURDIR)/$(VENV)/bin:$$PATH cmake --build build/cpp-fuzz -j $(JOBS)

fuzz: build-fuzz
	@for t in $(FUZZ_TARGETS); do \
	  mkdir -p build/cpp-fuzz/corpus-$$t && \
	  echo "=== $$t for $(FUZZ_SECONDS) s" && \
	  build/cpp-fuzz/$$t -max_total_time=$(FUZZ_SECONDS) -rss_limit_mb=2048 \
	    -artifact_prefix=build/cpp-fuzz/$$t- -print_final_stats=1 build/cpp-fuzz/corpus-$$t 2>&1 \
	    | grep -E "^(Done|stat::number_of_executed_units|==[0-9]+==ERROR|SUMMARY)" ; \
	  test $${PIPESTATUS[0]} -eq 0 || exit 1; \
	done

# The C++ tests under ThreadSanitizer and AddressSanitizer (+UBSan), with a shorter stress.
sanitize: system-deps $(VENV)/.tools
	@for s in thread address; do \
	  PATH=$(CURDIR)/$(VENV)/bin:$$PATH cmake -S cpp -B build/cpp-$$s -G Ninja -DMULTILANE_SANITIZE=$$s && \
	  PATH=$(CURDIR)/$(VENV)/bin:$$PATH cmake --build build/cpp-$$s -j $(JOBS) && \
	  MULTILANE_STRESS_FRAMES=200000 ctest --test-dir build/cpp-$$s --output-on-failure --no-tests=error || exit 1; \
	done

lint: $(VENV)/.ready
	$(VENV)/bin/ruff check src tests benchmarks
	$(VENV)/bin/mypy src/multilane

clean:
	rm -rf build .venv .venv-* BENCHMARKS.md.tmp
