# The two commands of the README. Both work on a fresh Debian machine with Python 3.11.
#   make run   — the service with the demo county, on http://127.0.0.1:8080
#   make test  — the whole test suite (CI runs exactly this, through .ci/run)
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
# Debian packages the tests use: real Redis and PostgreSQL servers, speech, the browser, and a
# CJK font so screenshots are readable (the Mongolian font ships inside the package).
TEST_DEBS := redis-server postgresql espeak-ng sox chromium fonts-wqy-microhei

.PHONY: run test install install-test debs lint bench

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip

# Stamps: reinstall only when pyproject.toml changes.
$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(BIN)/pip install -q -e .
	touch $@

$(VENV)/.installed-test: pyproject.toml | $(BIN)/python
	$(BIN)/pip install -q -e '.[test]'
	touch $@ $(VENV)/.installed

install: $(VENV)/.installed
install-test: $(VENV)/.installed-test

run: install
	$(BIN)/gongkai run --demo

debs:
	@missing=""; for p in $(TEST_DEBS); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
	  if [ "$$(id -u)" = 0 ]; then apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing; \
	  else echo "missing Debian packages (their tests will be skipped):$$missing"; \
	  echo "install them with: sudo apt-get install$$missing"; fi; \
	fi

test: debs install-test
	$(BIN)/python -m pytest -q

lint: install-test
	$(BIN)/ruff check . && $(BIN)/ruff format --check .

bench: install-test
	$(BIN)/python bench/fanout.py && $(BIN)/python bench/faq.py && $(BIN)/python bench/delivery_log.py
