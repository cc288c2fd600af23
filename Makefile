# Two entry points for a fresh machine with python3 and make: `make run` and `make test`.
# Each creates .venv if it is missing and installs the project and the extras it needs at the versions in
# uv.lock (uv itself, pinned below, is bootstrapped into .venv with pip). `make lock` refreshes uv.lock.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
UV_VERSION := 0.13.9
UV := $(VENV)/bin/uv
# --compile-bytecode: every package's .pyc written once at install; where PYTHONDONTWRITEBYTECODE is set, Python
# would otherwise recompile jax, numpy and matplotlib from source in every process (3.8 s instead of 1.3 s to import)
SYNC := UV_PROJECT_ENVIRONMENT=$(VENV) $(UV) sync --frozen --inexact --quiet --compile-bytecode
# bytecode caches on for the suite (PYTHONDONTWRITEBYTECODE empty): each xdist worker otherwise rewrites and compiles
# every test module again (collection 6.2 -> 4.3 CPU-s per worker); __pycache__ is git-ignored.
# OPENBLAS_NUM_THREADS=1: NumPy's and SciPy's OpenBLAS keep a thread per core in every process that uses them, which
# spins after each call (1.1% of the suite's CPU samples, with nothing to gain on two cores shared by three workers);
# read when NumPy loads, so set here, where the workers and every process they start inherit it
PYTEST := PYTHONDONTWRITEBYTECODE= OPENBLAS_NUM_THREADS=1 $(PY) -m pytest -q -n 3 --dist worksteal

# PYTHON named (`make test PYTHON=python3.12`) while .venv exists on another interpreter: refused before anything
# runs, rather than going on with the old one (.venv is made once, by whichever interpreter came first)
ifneq ($(filter command line environment,$(origin PYTHON)),)
ifneq ($(wildcard $(PY)),)
WHICH_PYTHON := import sys; print(sys.version.split()[0], sys.base_prefix)
VENV_PYTHON := $(shell $(PY) -c '$(WHICH_PYTHON)' 2>/dev/null)
NAMED_PYTHON := $(shell $(PYTHON) -c '$(WHICH_PYTHON)' 2>/dev/null)
ifneq ($(VENV_PYTHON),$(NAMED_PYTHON))
$(error $(VENV) runs Python $(VENV_PYTHON), not PYTHON=$(PYTHON) ($(or $(NAMED_PYTHON),cannot be run)): \
	rm -rf $(VENV), then make again, to rebuild it on that interpreter)
endif
endif
endif

.PHONY: setup run test test-fast mutants bench lock lint gpu-check

$(UV):
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check uv==$(UV_VERSION)

# one stamp per set of extras (joined by +), so `make run` installs only what the experiments need and
# `make test` never pays for the benchmark's optional PyTorch
$(VENV)/.stamp-base: pyproject.toml uv.lock Makefile | $(UV)
	$(SYNC)
	@touch $@

$(VENV)/.stamp-%: pyproject.toml uv.lock Makefile | $(UV)
	$(SYNC) $(foreach extra,$(subst +, ,$*),--extra $(extra))
	@touch $@

setup: $(VENV)/.stamp-dev+hpo+tracking+launchers

# the main job: every experiment, then report.md / report.html
run: $(VENV)/.stamp-base
	$(PY) experiments/run_all.py

# the whole suite (CI runs this); test-fast: the unit tier, for the edit-test loop (no whole experiment runs, no
# test marked slow)
test: setup
	$(PYTEST)

test-fast: setup
	$(PYTEST) tests/unit -m "not slow and not experiment"

# the mutation tier: planted bugs in src/gradlab/problems/ that the claims must catch (100% required)
mutants: setup
	$(PY) tests/mutation/run_mutants.py

# the benchmark with its optional comparisons: the `bench` extra (PyTorch, scikit-learn)
bench: $(VENV)/.stamp-dev+bench
	$(PY) experiments/bench_logreg.py

# on one GPU: run_all (GPU sizes), the suite (-n 8, no preallocation) and the benchmark, in at most ~6 minutes;
# one summary in outputs/gpu_check/summary.md (the script picks .venv, else python3 with PYTHONPATH=src)
gpu-check:
	$(PYTHON) tests/gpu_check.py

# re-resolve every dependency (base and each extra) to the newest allowed versions; commit the new uv.lock
lock: | $(UV)
	$(UV) lock --upgrade

lint: setup
	$(VENV)/bin/ruff check .
