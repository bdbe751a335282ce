# Two commands a new user needs: `make demo` (settle one month end to end) and `make test`.
SHELL := /bin/bash
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
PY := $(VENV)/bin/python
export AIRFLOW_HOME := $(CURDIR)/.airflow
export AIRFLOW__CORE__LOAD_EXAMPLES := False
export AIRFLOW__CORE__DAGS_FOLDER := $(CURDIR)/dags
export TRIBUTARY_HOME ?= $(CURDIR)/var

.PHONY: install demo test test-fast lint clean audio-system-packages statement-system-packages portal-system-packages

# The audio sandbox renders catalog works with the distribution's FluidSynth and its General
# MIDI soundfont (sandbox/audio_render.py); installed here like .ci/run installs PostgreSQL.
SOUNDFONT := /usr/share/sounds/sf2/TimGM6mb.sf2
audio-system-packages:
	@if ! command -v fluidsynth >/dev/null || [ ! -f $(SOUNDFONT) ]; then \
	  echo "installing fluidsynth and timgm6mb-soundfont"; \
	  sudo=""; [ "$$(id -u)" -eq 0 ] || sudo="sudo"; \
	  $$sudo apt-get update -qq && \
	  DEBIAN_FRONTEND=noninteractive $$sudo apt-get install -y -qq fluidsynth timgm6mb-soundfont >/dev/null; \
	fi

# Statements embed subset fonts that cover the catalog's scripts (settlement/statements.py):
# Noto Sans (Latin, Greek, Cyrillic), Noto Sans Arabic and Hebrew, WenQuanYi Micro Hei (Chinese,
# Japanese, Korean); poppler-utils gives the tests pdffonts and the docs pdftoppm.
STATEMENT_FONTS := /usr/share/fonts/truetype/noto/NotoSansArabic-Regular.ttf /usr/share/fonts/truetype/wqy/wqy-microhei.ttc
statement-system-packages:
	@if ! command -v pdffonts >/dev/null || ! ls $(STATEMENT_FONTS) >/dev/null 2>&1; then \
	  echo "installing fonts-noto-core fonts-wqy-microhei poppler-utils"; \
	  sudo=""; [ "$$(id -u)" -eq 0 ] || sudo="sudo"; \
	  $$sudo apt-get update -qq && \
	  DEBIAN_FRONTEND=noninteractive $$sudo apt-get install -y -qq fonts-noto-core fonts-wqy-microhei poppler-utils >/dev/null; \
	fi

# The portal's browser test drives the distribution's Chromium with Playwright for Python
# (tests/test_portal_browser.py); Playwright never downloads a browser of its own here.
portal-system-packages:
	@if ! command -v chromium >/dev/null; then \
	  echo "installing chromium"; \
	  sudo=""; [ "$$(id -u)" -eq 0 ] || sudo="sudo"; \
	  $$sudo apt-get update -qq && \
	  DEBIAN_FRONTEND=noninteractive $$sudo apt-get install -y -qq chromium >/dev/null; \
	fi

$(VENV)/.installed: pyproject.toml | audio-system-packages statement-system-packages portal-system-packages
	@$(PYTHON) -c 'import sys; assert sys.version_info >= (3, 11), "Python 3.11+ is required"'
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install -q --upgrade pip
	$(VENV)/bin/pip install -q -e '.[dev]'
	touch $@

$(AIRFLOW_HOME)/airflow.db: $(VENV)/.installed
	mkdir -p $(AIRFLOW_HOME)
	$(VENV)/bin/airflow db migrate > $(AIRFLOW_HOME)/migrate.log 2>&1 || (cat $(AIRFLOW_HOME)/migrate.log; exit 1)

# DuckDB takes one writing process at a time: the DAGs' warehouse writers share this one-slot
# pool (dags/_common.py), so they queue in Airflow instead of waiting on the file lock.
$(AIRFLOW_HOME)/pools.done: $(AIRFLOW_HOME)/airflow.db
	$(VENV)/bin/airflow pools set warehouse_writer 1 "DuckDB warehouse writers take turns" > /dev/null
	touch $@

install: $(VENV)/.installed $(AIRFLOW_HOME)/airflow.db $(AIRFLOW_HOME)/pools.done

demo: install
	$(PY) -m sandbox.demo

# pytest exits 5 when it collected no test; that is a broken suite, never a pass.
# One pytest-xdist worker per core, each test file on one worker (its module fixtures, such
# as a trained model or a settled month, are built once); PYTEST_WORKERS=0 runs in-process.
PYTEST_WORKERS ?= auto
test: install
	@set +e; $(PY) -m pytest -n $(PYTEST_WORKERS) --dist loadfile $(PYTEST_ARGS); rc=$$?; \
	if [ $$rc -eq 5 ]; then echo "pytest collected no tests: failing on purpose"; exit 1; fi; exit $$rc

test-fast: install
	$(PY) -m pytest -m "not e2e" $(PYTEST_ARGS)

lint: install
	$(VENV)/bin/ruff check .

clean:
	rm -rf var .airflow .pytest_cache

# Multi-worker Airflow (docs/multiworker.md): the month on PostgreSQL (started on loopback from
# the distribution's binaries) with LocalExecutor workers, compared to the embedded default to
# the cent. Needs PostgreSQL's server binaries: apt-get install -y postgresql. Never touches
# .airflow/ or var/ (everything lives in temp folders), so it only needs the virtualenv.
.PHONY: multiworker
multiworker: $(VENV)/.installed
	$(PY) -m pytest tests/test_multiworker.py -s $(PYTEST_ARGS)
