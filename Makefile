# segment-bridge developer commands. Everything installs itself into .venv on first use.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
SAM_VENV := .venv-sam
CHECKOV_VENV := .venv-checkov
# `sam build` needs the functions' runtime (python3.13) on PATH; pyenv has it on the dev machines.
PY313 := $(shell (pyenv prefix 3.13 2>/dev/null || pyenv prefix 3.13.0 2>/dev/null) | head -1)
# The browser test drives Debian's chromium with its chromedriver; apt-get needs root (CI is root).
CHROMIUM ?= /usr/bin/chromium
CHROMEDRIVER ?= /usr/bin/chromedriver
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

.PHONY: help install run test test-fast lint format fuzz bench lint-template sam-tools checkov-tools sam-validate sam-build clean
.PHONY: browser-tools test-browser

help:
	@echo "make run    - run the whole bridge locally (moto + local Segment sink) and send the samples"
	@echo "make test   - install everything, run make lint and the full test suite"
	@echo "make lint   - ruff (lint + format check) and mypy (strict on layers/ and functions/)"
	@echo "make format - apply ruff's formatting and safe fixes"
	@echo "make bench  - run the benchmarks, write docs/benchmarks.md"
	@echo "make fuzz   - longer property-based fuzzing of the ingest API"
	@echo "make test-browser - the debugger page in headless Chromium (installs chromium; SCREENSHOT=docs/debugger.png saves one)"

$(BIN)/.installed: pyproject.toml requirements-dev.txt layers/shared/requirements.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --disable-pip-version-check -r requirements-dev.txt
	$(BIN)/python -m pip install -q --disable-pip-version-check --no-deps -e .
	touch $@

install: $(BIN)/.installed

run: install
	$(BIN)/python -m segment_bridge_tools.demo $(ARGS)

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

format: install
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

test: lint sam-tools checkov-tools browser-tools
	CHECKOV_CLI=$(abspath $(CHECKOV_VENV))/bin/checkov SAM_CLI=$(abspath $(SAM_VENV))/bin/sam SAM_PYTHON313=$(PY313) $(BIN)/python -m pytest -q $(PYTEST_ARGS)

test-fast: install
	$(BIN)/python -m pytest -q -m "not slow and not e2e" $(PYTEST_ARGS)

# The same properties as `make test` (which runs them with FUZZ_EXAMPLES=200), ten times longer,
# plus the multi-second worst-case measurements; prints how many inputs were generated.
fuzz: install
	FUZZ_EXAMPLES=$${FUZZ_EXAMPLES:-2000} $(BIN)/python -m pytest -q tests -m fuzz -p no:cacheprovider $(PYTEST_ARGS)

bench: install
	$(BIN)/python -m bench $(ARGS)

# Debian's chromium and chromium-driver, installed when missing (a fresh CI machine); `make test`
# needs them too, since it runs tests/browser with everything else.
browser-tools:
	@if [ ! -x "$(CHROMIUM)" ] || [ ! -x "$(CHROMEDRIVER)" ]; then \
		echo "installing Debian's chromium and chromium-driver for tests/browser"; \
		$(SUDO) apt-get update -q && \
		$(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends chromium chromium-driver; \
	fi

test-browser: install browser-tools
	CHROMIUM=$(CHROMIUM) CHROMEDRIVER=$(CHROMEDRIVER) DEBUGGER_SCREENSHOT=$(SCREENSHOT) \
		$(BIN)/python -m pytest -q -p no:cacheprovider tests/browser $(PYTEST_ARGS)

# The SAM CLI pins its own dependency versions, so it lives in a venv of its own.
$(SAM_VENV)/.installed:
	test -x $(SAM_VENV)/bin/python || $(PYTHON) -m venv $(SAM_VENV)
	$(SAM_VENV)/bin/python -m pip install -q --disable-pip-version-check "aws-sam-cli>=1.140"
	touch $@

sam-tools: $(SAM_VENV)/.installed

# checkov pins its own boto3 (older than ours), so it too lives in a venv of its own.
$(CHECKOV_VENV)/.installed:
	test -x $(CHECKOV_VENV)/bin/python || $(PYTHON) -m venv $(CHECKOV_VENV)
	$(CHECKOV_VENV)/bin/python -m pip install -q --disable-pip-version-check "checkov>=3.2,<4"
	touch $@

checkov-tools: $(CHECKOV_VENV)/.installed

lint-template: install
	$(BIN)/cfn-lint template.yaml

sam-validate: sam-tools
	$(SAM_VENV)/bin/sam validate --lint --template template.yaml

sam-build: sam-tools
	PATH="$(PY313)/bin:$$PATH" $(SAM_VENV)/bin/sam build --template template.yaml

clean:
	rm -rf $(VENV) $(SAM_VENV) $(CHECKOV_VENV) .aws-sam .pytest_cache .hypothesis
