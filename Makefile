# Confirma: `make run` starts the whole thing; `make test` runs every test.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
HOST ?= 127.0.0.1
PORT ?= 8000

.PHONY: run test lint format messages makemessages clean screenshots bench

$(VENV)/.runtime: requirements.txt
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements.txt
	touch $@

$(VENV)/.bench: bench/requirements.txt requirements.txt $(VENV)/.runtime
	$(PY) -m pip install --quiet -r bench/requirements.txt
	touch $@

$(VENV)/.dev: requirements-dev.txt requirements.txt $(VENV)/.runtime
	$(PY) -m pip install --quiet -r requirements-dev.txt
	touch $@

# Translation tools need no secret key: they run in the local profile (DEBUG is off unless set).
messages: $(VENV)/.runtime
	DEBUG=true $(PY) manage.py compile_translations

## run: install, migrate, load demo data, start daphne + worker + periodic jobs
run: $(VENV)/.runtime messages
	HOST=$(HOST) PORT=$(PORT) PY=$(PY) scripts/run.sh

## test: install the test tools and run the whole suite (ruff and lint-imports first)
test: $(VENV)/.dev messages
	PY=$(PY) scripts/test.sh $(ARGS)

lint: $(VENV)/.dev
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/lint-imports --no-cache

format: $(VENV)/.dev
	$(VENV)/bin/ruff check --fix .
	$(VENV)/bin/ruff format .

makemessages: $(VENV)/.runtime
	DEBUG=true $(PY) manage.py makemessages -l pt_BR -l es -l uz -l ru --ignore=.venv --ignore=var --ignore=staticfiles --ignore=tests
	DEBUG=true $(PY) manage.py makemessages -d djangojs -l pt_BR -l es -l uz -l ru --ignore=.venv --ignore=var --ignore=staticfiles --ignore=tests

clean:
	rm -rf $(VENV) var staticfiles .pytest_cache .ruff_cache

## screenshots: regenerate docs/screenshots/*.png (English) and docs/screenshots/pt-br/*.png in Chromium
screenshots: $(VENV)/.dev messages
	$(PY) scripts/screenshots.py

## bench: the full benchmark run against PostgreSQL + Redis (docs/performance.md); ARGS=--quick
bench: $(VENV)/.bench
	$(PY) -m bench $(ARGS)
