# Bootstraps .venv idempotently (python3 + pip only), then runs the job.
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: demo test bench lint clean-venv

$(STAMP): requirements.txt requirements-dev.txt pyproject.toml
	test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install -q -r requirements-dev.txt
	$(PY) -m pip install -q --no-deps -e .
	touch $(STAMP)

# Main job on the embedded default (the demo pipeline).
demo: $(STAMP)
	$(VENV)/bin/snakemake --cores all

# The full test suite (CI runs exactly this via .ci/run).
test: $(STAMP)
	$(PY) -m pytest

bench: $(STAMP)
	$(PY) benchmarks/bench_blend.py

lint: $(STAMP)
	$(VENV)/bin/snakemake --lint
	$(VENV)/bin/snakefmt --check .

clean-venv:
	rm -rf $(VENV)
