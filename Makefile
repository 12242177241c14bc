# dppo-embodied: two commands set up a fresh machine — `make test` and `make demo`.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip
STAMP := $(VENV)/.installed
TORCH_VERSION ?= 2.13.0
# CPU build by default. GPU users: make setup TORCH_INDEX=https://download.pytorch.org/whl/cu128 (see README).
TORCH_INDEX ?=
EXTRAS ?= sim,eval,train,serve,bridge,dev
# Exact versions of the rest, so fresh installs get the same packages; CONSTRAINTS= floats them.
CONSTRAINTS ?= constraints.txt
# torch's own requirements stay out of the pins: a CUDA build of torch may need other versions of them.
TORCH_DEPS := filelock|fsspec|jinja2|markupsafe|mpmath|networkx|sympy|typing.extensions|setuptools|triton|nvidia-.*

export HF_HUB_OFFLINE := 1
export HF_HUB_DISABLE_TELEMETRY := 1
export HF_DATASETS_OFFLINE := 1
export TRANSFORMERS_OFFLINE := 1
export WANDB_MODE := disabled
export TOKENIZERS_PARALLELISM := false
export MUJOCO_GL := egl
export PYOPENGL_PLATFORM := egl

.PHONY: setup constraints test test-all bench demo lint clean

setup: $(STAMP)

$(STAMP): pyproject.toml Makefile $(CONSTRAINTS)
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	@# torch first, so that nothing later resolves torch to a CUDA build.
	@$(PY) -c "import torch, sys; sys.exit(0 if torch.__version__.startswith('$(TORCH_VERSION)') else 1)" 2>/dev/null || \
		$(PIP) install --quiet "torch==$(TORCH_VERSION)" $(if $(TORCH_INDEX),--index-url $(TORCH_INDEX),)
	$(PIP) install --quiet $(if $(CONSTRAINTS),-c $(CONSTRAINTS),) -e ".[$(EXTRAS)]"
	@# Optional LeRobot sim envs: installed when they install here, skipped cleanly otherwise.
	-@$(PIP) install --quiet "gym-pusht>=0.1.5" "opencv-python-headless>=4.9" >/dev/null 2>&1 && \
		$(PIP) uninstall --quiet -y opencv-python >/dev/null 2>&1; \
		$(PIP) install --quiet --force-reinstall --no-deps "opencv-python-headless>=4.9" >/dev/null 2>&1; true
	@touch $(STAMP)

# Freeze the current environment into constraints.txt; after changing pyproject's dependencies:
# make setup CONSTRAINTS= && make constraints
constraints: setup
	@{ sed -n '/^#/p' constraints.txt; $(PIP) freeze --exclude-editable | grep -v -i -E \
		'^(torch|gym-pusht|opencv-python-headless|$(TORCH_DEPS))==' | \
		sed 's/$$/ ; python_version == "3.11"/'; } > constraints.txt.tmp && mv constraints.txt.tmp constraints.txt

test: setup
	$(VENV)/bin/pytest -q -m "not slow and not bench" tests

test-all: setup
	$(VENV)/bin/pytest -q -m "not bench" tests

bench: setup
	$(VENV)/bin/pytest -q -m bench --benchmark-enable --benchmark-only tests/perf

demo: setup
	$(VENV)/bin/dppo demo

lint: setup
	$(VENV)/bin/ruff check .
	$(VENV)/bin/lint-imports

clean:
	rm -rf $(VENV) outputs .pytest_cache
