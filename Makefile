# Every target creates and reuses .venv itself; the venv is rebuilt when constraints.txt or
# pyproject.toml change (their hash names the stamp file).
PY ?= $(shell command -v python3.11 || command -v python3)
VENV ?= .venv
BIN := $(VENV)/bin
HASH := $(shell cat constraints.txt pyproject.toml | sha256sum | cut -c1-16)
STAMP := $(VENV)/.deps-$(HASH)
PYTEST_ARGS ?=

.PHONY: venv demo test lint bench lock clean

$(STAMP):
	@test -x $(BIN)/python || $(PY) -m venv $(VENV)
	@echo "installing pinned dependencies into $(VENV) (1-3 minutes the first time)"
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -c constraints.txt hatchling editables
	$(BIN)/python -m pip install -q -c constraints.txt --no-build-isolation -e '.[prefect,dev]'
	@rm -f $(VENV)/.deps-* && echo "$(CURDIR)" > $(VENV)/.editable-src && touch $@

venv: $(STAMP)
	@grep -qxF "$(CURDIR)" $(VENV)/.editable-src 2>/dev/null || { \
	  $(BIN)/python -m pip install -q --no-deps --no-build-isolation -e . && \
	  echo "$(CURDIR)" > $(VENV)/.editable-src; }

demo: venv
	$(BIN)/prodcontrol demo

test: venv
	$(BIN)/python -m pytest $(PYTEST_ARGS)

lint: venv
	$(BIN)/ruff check src tests bench
	$(BIN)/mypy --strict src/

bench: venv
	$(BIN)/python -m bench

lock:
	rm -rf .lock-venv && $(PY) -m venv .lock-venv
	.lock-venv/bin/python -m pip install -q --upgrade pip
	.lock-venv/bin/python -m pip install -q hatchling editables -e '.[prefect,dev]'
	{ head -3 constraints.txt; .lock-venv/bin/python -m pip freeze --exclude-editable; } > constraints.new
	mv constraints.new constraints.txt && rm -rf .lock-venv

clean:
	rm -rf $(VENV) .prodcontrol .pytest_cache .mypy_cache .ruff_cache

# ---------------------------------------------------------------------------- Airflow provider
# integrations/airflow is its own distribution with its own venv: Airflow 3.3 and Prefect >= 3.7
# cannot share one. The venv installs prodcontrol without its prefect extra, pinned by the
# measured lock integrations/airflow/constraints-3.11.txt (`make lock-airflow` regenerates it),
# and is rebuilt when that lock or either pyproject.toml changes.
AF_DIR := integrations/airflow
AF_VENV ?= $(AF_DIR)/.venv
AF_BIN := $(abspath $(AF_VENV))/bin
AF_LOCK := $(AF_DIR)/constraints-3.11.txt
AF_VERSION := 3.3.2
AF_HASH := $(shell cat $(AF_LOCK) $(AF_DIR)/pyproject.toml pyproject.toml 2>/dev/null | sha256sum | cut -c1-16)
AF_STAMP := $(abspath $(AF_VENV))/.deps-$(AF_HASH)
AF_PYTEST_ARGS ?=

.PHONY: venv-airflow test-airflow lock-airflow

$(AF_STAMP):
	@test -x $(AF_BIN)/python || $(PY) -m venv $(AF_VENV)
	@echo "installing Airflow $(AF_VERSION) and the provider into $(AF_VENV) (about 2 minutes the first time)"
	$(AF_BIN)/python -m pip install -q --upgrade pip
	$(AF_BIN)/python -m pip install -q -c $(AF_LOCK) hatchling editables
	$(AF_BIN)/python -m pip install -q -c $(AF_LOCK) --no-build-isolation \
	  "apache-airflow==$(AF_VERSION)" -e . -e '$(AF_DIR)[dev]'
	@rm -f $(AF_BIN)/../.deps-* && echo "$(CURDIR)" > $(AF_BIN)/../.editable-src && touch $@

venv-airflow: $(AF_STAMP)
	@grep -qxF "$(CURDIR)" $(AF_BIN)/../.editable-src 2>/dev/null || { \
	  $(AF_BIN)/python -m pip install -q --no-deps --no-build-isolation -e . -e $(AF_DIR) && \
	  echo "$(CURDIR)" > $(AF_BIN)/../.editable-src; }

test-airflow: venv-airflow
	cd $(AF_DIR) && $(AF_BIN)/mypy --strict src/ && $(AF_BIN)/python -m pytest $(AF_PYTEST_ARGS)

lock-airflow:
	rm -rf .lock-venv-airflow && $(PY) -m venv .lock-venv-airflow
	.lock-venv-airflow/bin/python -m pip install -q --upgrade pip
	.lock-venv-airflow/bin/python -m pip install -q hatchling editables
	.lock-venv-airflow/bin/python -m pip install -q --no-build-isolation \
	  "apache-airflow==$(AF_VERSION)" -e . -e '$(AF_DIR)[dev]'
	{ sed -n '1,/^# ---- end of header/p' $(AF_LOCK); \
	  .lock-venv-airflow/bin/python -m pip freeze --exclude-editable; } > $(AF_LOCK).new
	mv $(AF_LOCK).new $(AF_LOCK) && rm -rf .lock-venv-airflow
