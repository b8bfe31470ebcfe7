# Two commands set everything up on a fresh machine: `make demo` and `make test`.
# Both create .venv when it is missing. uv installs in ~15 s where pip takes ~90 s.
# Bytecode is compiled at install (~1 min): where PYTHONDONTWRITEBYTECODE is set, as here, every
# process would otherwise compile torch, Ray and DeepSpeed again (12 s per import instead of 5).
SHELL := /bin/bash
VENV := .venv
PY := $(VENV)/bin/python
UV := $(VENV)/bin/uv
# A folder of local wheels (this machine's CPU torch lies in /opt/wheels); elsewhere torch comes
# from the index: `make venv TORCH_FIND_LINKS=` plus `UV_EXTRA_INDEX_URL=https://download.pytorch.org/whl/cu128`.
TORCH_FIND_LINKS ?= $(wildcard /opt/wheels)
UV_FLAGS := $(if $(TORCH_FIND_LINKS),--find-links $(TORCH_FIND_LINKS),)
STATE := .state
# The browser test (tests/integration/test_stack.py) drives Debian's Chromium through Playwright's Python
# client: `playwright install` would download a browser build of its own, which this machine cannot reach.
CHROMIUM := /usr/bin/chromium
SUDO := $(if $(filter 0,$(shell id -u)),,sudo)

export ONEDNN_MAX_CPU_ISA ?= AVX512_CORE_BF16
export MLFLOW_DISABLE_TELEMETRY := true
export HF_DATASETS_OFFLINE := 1
export PYTHONUNBUFFERED := 1

.PHONY: venv demo test test-fast up down lock clean

$(PY):
	python3 -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --disable-pip-version-check uv
	$(UV) pip install --python $(PY) $(UV_FLAGS) --compile-bytecode -r requirements.lock
	$(UV) pip install --python $(PY) --no-deps --config-settings editable_mode=compat -e .

venv: $(PY)

# Each runs only when its file is missing: a fresh machine has no Chromium, and a venv made before
# playwright joined the lock lacks it.
$(CHROMIUM):
	$(SUDO) apt-get update -qq
	$(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null

$(VENV)/bin/playwright: | $(PY)
	$(UV) pip install --python $(PY) --quiet $$(grep '^playwright==' requirements.lock)

demo: $(PY)
	$(PY) -m stack.demo

test: $(PY) $(VENV)/bin/playwright $(CHROMIUM)
	$(PY) -m pytest -q

test-fast: $(PY)
	$(PY) -m pytest -q -m "not integration"

up: $(PY)
	$(PY) -m stack.services up

down: $(PY)
	$(PY) -m stack.services down

# Re-resolve the lock after changing pyproject.toml. The current pins are kept as preferences (only
# what the change needs moves); torch's local "+cpu" tag is put back for the resolve, so the CPU wheel
# satisfies it, then dropped, so the same lock takes a CUDA build of the same version on a GPU machine.
lock: $(PY)
	sed -i 's/^torch==\([0-9.]*\)$$/torch==\1+cpu/' requirements.lock
	$(UV) pip compile pyproject.toml --extra dev $(UV_FLAGS) --python-version 3.11 -o requirements.lock
	sed -i 's/^torch==\([0-9.]*\)+cpu/torch==\1/' requirements.lock

clean:
	rm -rf $(STATE) build *.egg-info
