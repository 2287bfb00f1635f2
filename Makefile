# The menu. `make run` and `make test` set up whatever is missing first.
SHELL := /bin/bash
.DEFAULT_GOAL := help

PYTHON311 ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
RASA_VENV := .venv-rasa
# Debian's Chromium for the browser tests: test tools may not download browsers of their own here.
CHROMIUM := /usr/bin/chromium
# Debian's Prometheus brings promtool, which checks and unit-tests deploy/prometheus/alerts.yml.
PROMTOOL := /usr/bin/promtool
# Prometheus's multiprocess files: every process of one `make run` writes here, the exporter adds them up.
METRICS_DIR := $(CURDIR)/var/prometheus
TRAINING_DATA := $(sort $(wildcard nlu/*.yml))
NLU_CODE := $(wildcard nlu/components/*.py) civic/language.py
export PYTHONPATH := $(CURDIR)
export ACTION_SERVER_URL ?= http://127.0.0.1:5055/webhook
export SQLALCHEMY_SILENCE_UBER_WARNING := 1
# The app defaults to production (placeholder secrets refused); the menu is for developing and testing.
export ENVIRONMENT ?= development

help: ## Show this menu
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk 'BEGIN{FS=":.*## "}{printf "  make %-14s %s\n", $$1, $$2}'

run: setup ## Set up what is missing, then start Rasa (5005), actions (5055) and the web app (8000)
	@echo "Starting: web chat http://localhost:8000/chat · Rasa http://localhost:5005 · actions http://localhost:5055/health · metrics http://127.0.0.1:9464/metrics"
	rm -rf $(METRICS_DIR) && mkdir -p $(METRICS_DIR)  # a previous run's counts must not add to this one's
	PROMETHEUS_MULTIPROC_DIR=$(METRICS_DIR) $(VENV)/bin/honcho start -f Procfile

run-scaled: setup ## Scale mode: 2 web workers on :8000, Rasa replicas :5005 and :5006, on PostgreSQL + Redis
	scripts/run-scaled.sh

setup: $(VENV)/.installed $(RASA_VENV)/.installed migrate models/.trained ## Venvs, migrations and a trained model

test: $(VENV)/.installed $(RASA_VENV)/.installed models/.trained $(CHROMIUM) $(PROMTOOL) ## Alert rules, then the whole suite on SQLite, then on PostgreSQL
	scripts/test.sh

bench: setup ## Run the benchmarks; results in bench/results/*.json
	$(VENV)/bin/python -m bench.run_all

soak: setup ## Scale mode for 5 min, 200 citizens, a web worker and a Rasa replica killed; bench/results/soak.json
	$(VENV)/bin/python -m bench.soak --seconds 300 --citizens 200

train: models/.trained ## Train the Rasa model when nlu/, config.yml or domain.yml changed

nlu-eval: $(RASA_VENV)/.installed models/.trained ## Score the model on the held-out split (nlu/tests/)
	$(RASA_VENV)/bin/python -m nlu.evaluate --model models --tests nlu/tests

dialogue-eval: setup ## Play the conversation set (tests/dialogues/) on the real stack; rate per language (ARGS='--lang ko')
	$(VENV)/bin/python -m bench.dialogue_eval $(ARGS)

asr-eval: $(VENV)/.installed ## CER, closed-answer accuracy and false accepts per ASR engine (DIR=folder with transcripts.tsv, ARGS=--json out.json …)
	$(VENV)/bin/python -m telephony.asr_eval $(or $(DIR),tests/telephony/audio) $(ARGS)

corpora: $(VENV)/.installed ## Lay out real Korean speech from local git copies (KOSPEECH=git dir, DEEPLY=git dir) in var/corpora/real, never committed
	$(VENV)/bin/python -m telephony.corpora $(if $(KOSPEECH),--kospeech $(KOSPEECH)) $(if $(DEEPLY),--deeply $(DEEPLY))

lint: $(VENV)/.installed ## ruff, mypy and the import contracts (lint-imports, [tool.importlinter] in pyproject.toml)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/mypy civic bot actions webapp telephony operator_console
	$(VENV)/bin/lint-imports

migrate: $(VENV)/.installed ## Migrate the database (DATABASE_URL, default SQLite under var/)
	$(VENV)/bin/python -m civic.migrate

purge: migrate ## PIPA retention: blank old transcripts, delete old photos and call audio (DRY_RUN=1 only counts)
	$(VENV)/bin/python -m civic.retention $(if $(DRY_RUN),--dry-run)

backup: $(VENV)/.installed ## Back up the SQLite database and the media into var/backups/ (PostgreSQL: see README)
	$(VENV)/bin/python -m civic.backup create

restore: $(VENV)/.installed ## Restore a backup, database and media (stop `make run` first): make restore FILE=var/backups/civic-….db
	@test -n "$(FILE)" || { echo "usage: make restore FILE=var/backups/civic-YYYYmmddTHHMMSSZ.db" >&2; exit 2; }
	@test -f "$(FILE)" || { echo "no such backup: $(FILE)" >&2; exit 2; }
	$(VENV)/bin/python -m civic.backup restore "$(FILE)"

admin: migrate ## Create an operator-console admin (asks for the email, then the password)
	@read -r -p "Admin email: " EMAIL && $(VENV)/bin/python -m operator_console.users create --role admin --email "$$EMAIL"

shell: setup ## Talk to Rasa directly in the terminal (needs `make run` in another terminal for the actions)
	@# The action server wants its token; unsigned turns are accepted (as channel "rest") in development only.
	ACTION_SERVER_TOKEN="$$($(VENV)/bin/python -c 'from civic.settings import get_settings; print(get_settings().action_server_token)')" \
	  $(RASA_VENV)/bin/rasa shell --model models --endpoints endpoints.yml

$(VENV)/.installed: pyproject.toml
	$(PYTHON311) -m venv $(VENV)
	$(VENV)/bin/pip install -q --upgrade pip
	$(VENV)/bin/pip install -q -e '.[dev]'
	touch $@

$(RASA_VENV)/.installed: requirements-rasa.txt
	$$(scripts/find-python310.sh) -m venv $(RASA_VENV)
	$(RASA_VENV)/bin/pip install -q --upgrade pip
	PYTHONPATH= $(RASA_VENV)/bin/pip install -q -r requirements-rasa.txt  # our egg-info on PYTHONPATH would confuse its checks
	touch $@

$(CHROMIUM):
	@echo "Installing Debian's chromium for the browser tests (needs root; else: sudo apt-get install chromium)"
	apt-get install -y -q chromium || (apt-get update -q && apt-get install -y -q chromium)

$(PROMTOOL):
	@echo "Installing Debian's prometheus for promtool (needs root; else: sudo apt-get install prometheus)"
	apt-get install -y -q prometheus || (apt-get update -q && apt-get install -y -q prometheus)

alerts: $(PROMTOOL) ## Check the alert rules and run their unit tests (deploy/prometheus/)
	$(PROMTOOL) check rules deploy/prometheus/alerts.yml
	$(PROMTOOL) test rules deploy/prometheus/alerts.test.yml

models/.trained: $(RASA_VENV)/.installed config.yml domain.yml $(TRAINING_DATA) $(NLU_CODE)
	mkdir -p models
	$(RASA_VENV)/bin/rasa train --config config.yml --domain domain.yml --data $(TRAINING_DATA) --out models --quiet
	touch $@

.PHONY: help run run-scaled setup test alerts bench soak train nlu-eval dialogue-eval asr-eval corpora lint migrate purge backup restore admin shell
