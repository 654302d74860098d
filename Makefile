# Two commands on a fresh machine (Python 3.10+, no GPU needed):
#   make demo   sets up .venv and runs the end-to-end demo on the bundled samples, offline
#   make test   sets up .venv and runs the whole test suite (what CI runs)
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.brandkit-installed

.PHONY: setup demo test lab

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	# the cpu extra pins torch's CPU wheel; an unpinned torch pulls a CUDA build of several GB
	$(BIN)/python -m pip install --quiet -e ".[cpu,dev]"
	# unsloth itself (pinned in the gpu extra) without its CUDA dependencies: the tests check the
	# GPU backend's keywords against its source and run it in Unsloth's CPU mode
	$(BIN)/python -m pip install --quiet --no-deps $$($(BIN)/python scripts/extra_pins.py gpu unsloth)
	touch $(STAMP)

setup: $(STAMP)

demo: setup
	$(BIN)/brandkit demo

test: setup
	$(BIN)/python -m pytest

lab: setup
	$(BIN)/jupyter lab notebooks/
