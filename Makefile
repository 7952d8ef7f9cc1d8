# Two entry points for a fresh machine (Python 3.11+ and make are all they need):
#   make reproduce   regenerate every table, figure and the HTML report under results/
#   make test        run the test suite (includes an end-to-end pipeline run on a small config)
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
CORES  ?= $(shell nproc 2>/dev/null || echo 2)   # parallel jobs: make reproduce CORES=2
EXTRAS ?= test      # CI adds gpu (the CPU build of PyTorch) to run the calibration harness tests
comma  := ,
# one install stamp per set of extras, so a change of EXTRAS reinstalls
STAMP  := $(VENV)/.installed-$(subst $(comma),-,$(strip $(EXTRAS)))

.PHONY: reproduce test goldens lint bench clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip

# Reinstall whenever the dependency list changes.
$(STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install -q -e '.[$(strip $(EXTRAS))]'
	touch $@

# The first command skips the "report is stale" line: the second builds the report right after.
reproduce: $(STAMP)
	RDUSIM_REPORT_FOLLOWS=1 $(BIN)/snakemake --cores $(CORES)
	$(BIN)/snakemake --cores $(CORES) --report results/report.html

test: $(STAMP)
	$(BIN)/lint-imports
	$(BIN)/python -m pytest

# Deliberately regenerate the golden tables under tests/golden (review the diff before committing).
goldens: $(STAMP)
	$(BIN)/python -m rdusim.report.goldens --write

lint: $(STAMP)
	$(BIN)/snakemake --lint

# Speed figures (pytest-benchmark); not part of `make test`.
bench: $(STAMP)
	$(BIN)/python -m pytest tests/bench --benchmark-enable --benchmark-only -p no:randomly

clean:
	rm -rf results/tables results/figures results/validation results/logs results/benchmarks results/report.html .snakemake
