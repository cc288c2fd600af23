# Two entry points for a fresh machine with python3 and make: `make run` and `make test`.
# Each creates .venv if it is missing and installs the project with the extras it needs.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python

.PHONY: setup run test bench lint

# one stamp per set of extras, so `make run` installs only what the experiments need and `make test` never pays
# for the benchmark's optional PyTorch
$(VENV)/.stamp-base: pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e .
	@touch $@

$(VENV)/.stamp-%: pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[$(subst +,$(comma),$*)]'
	@touch $@

comma := ,

setup: $(VENV)/.stamp-dev

# the main job: every experiment, then report.md / report.html; light: the benchmark's optional PyTorch and
# scikit-learn comparisons are recorded as skipped (`make bench` installs them)
run: $(VENV)/.stamp-base
	$(PY) experiments/run_all.py

test: $(VENV)/.stamp-dev+hpo+tracking
	$(PY) -m pytest -q -n 3 --dist worksteal

# the benchmark with its optional comparisons: the `bench` extra (PyTorch, scikit-learn)
bench: $(VENV)/.stamp-dev+bench
	$(PY) experiments/bench_logreg.py

lint: $(VENV)/.stamp-dev
	$(VENV)/bin/ruff check .
