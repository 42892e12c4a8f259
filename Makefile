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
