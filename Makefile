# Everruns: `make run` (embedded quick start), `make test` (the whole suite on PostgreSQL + Redis) and
# `make test-unit` (pure functions, no services).
PYTHON ?= python3.11
VENV := .venv
PY := $(VENV)/bin/python
PORT ?= 9000
STAMP := $(VENV)/.installed

.PHONY: run test test-unit lint format install services browser frontends serve-prod worker bench chaos spectacular clean mutation

$(STAMP): requirements.txt cli/pyproject.toml
	@command -v $(PYTHON) >/dev/null 2>&1 || { echo "need $(PYTHON)"; exit 1; }
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -r requirements.txt
	# The command line (.venv/bin/everruns); editable, so cli/ changes need no reinstall. Its dependencies are
	# the exact pins above (--no-deps).
	$(PY) -m pip install --quiet --disable-pip-version-check --no-deps -e ./cli
	@touch $(STAMP)

install: $(STAMP)

run: $(STAMP)
	$(PY) manage.py migrate --noinput
	$(PY) manage.py collectstatic --noinput --verbosity 0
	exec $(VENV)/bin/uvicorn everruns.asgi:application --host 127.0.0.1 --port $(PORT) --loop uvloop \
		--timeout-graceful-shutdown 5 --no-access-log

services:
	@bash scripts/services.sh

browser:
	@bash scripts/browser.sh

# The chat front-ends' client libraries (AG-UI, the AI SDK) that tests/e2e/test_frontends.py drives, from
# tests/frontends/package-lock.json (and Debian's nodejs + npm when missing).
frontends:
	@bash scripts/frontends.sh

lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/lint-imports

format: $(STAMP)
	$(VENV)/bin/ruff check --fix .
	$(VENV)/bin/ruff format .

test: $(STAMP) lint services browser frontends
	$(PY) manage.py spectacular --validate --fail-on-warn --file /dev/null
	DATABASE_URL=$${TEST_DATABASE_URL:-postgres://postgres@127.0.0.1:5432/everruns} \
	REDIS_URL=$${TEST_REDIS_URL:-redis://127.0.0.1:6379/15} \
	$(PY) -m pytest $(PYTEST_ARGS)

# Pure functions only, in seconds: no PostgreSQL, no Redis (both point at a closed port, so a unit
# test that reached for one would fail).
test-unit: $(STAMP)
	DATABASE_URL=postgres://postgres@127.0.0.1:1/none REDIS_URL=redis://127.0.0.1:1/0 \
	$(PY) -m pytest -q tests/unit $(PYTEST_ARGS)

BENCH_STAMP := $(VENV)/.bench-installed

$(BENCH_STAMP): bench/requirements.txt $(STAMP)
	$(PY) -m pip install --quiet --disable-pip-version-check -r bench/requirements.txt
	@touch $(BENCH_STAMP)

# Starts the Procfile shape on private PostgreSQL/Redis, runs every scenario of issue 8, prints the table and
# writes bench/results/<date>.json + .png. `make bench BENCH_ARGS=--quick` for a smoke run.
bench: $(BENCH_STAMP)
	$(PY) bench/run.py --scenario all $(BENCH_ARGS)

# Issue 10: the Procfile shape (web + 2 workers) on private PostgreSQL/Redis drives 100 tool turns over 20 sessions
# while workers are SIGKILLed every few seconds and Redis and PostgreSQL restart once each; then checks from the API
# that every turn completed exactly once. Writes bench/results/chaos-<date>.json. `make chaos CHAOS_ARGS=--help`.
chaos: $(STAMP)
	$(PY) bench/chaos.py $(CHAOS_ARGS)

# Mutation testing (mutmut, config in pyproject.toml) over the functions where a silent change hurts
# most, with the fast in-process tests: ~390 mutants, about 25 minutes on one core. Survivors are
# listed at the end; `$(VENV)/bin/mutmut show NAME` shows one. Choose others with MUTANTS="runner.loop.*"
# (fnmatch patterns over mutant names; `mutmut results --all true` lists them all).
MUTANTS ?= sessions.streams.stream.x_parse_cursor* sessions.streams.stream.x_event_stream* sessions.streams.stream.x_encode_raw* \
	runner.history.x_unanswered_tool_calls* runner.history.x_tool_result_text* runner.toolexec.x_parse_arguments* \
	runner.loop.x_retry_delay_ms* runner.llm.errors.x_classify* runner.llm.errors.x__retry_after* runner.llm.errors.x__connection_failed*
mutation: $(STAMP) services
	DATABASE_URL=$${TEST_DATABASE_URL:-postgres://postgres@127.0.0.1:5432/everruns} \
	REDIS_URL=$${TEST_REDIS_URL:-redis://127.0.0.1:6379/15} \
	$(VENV)/bin/mutmut run --max-children 1 $(foreach m,$(MUTANTS),"$(m)")
	$(VENV)/bin/mutmut results


clean:
	rm -rf $(VENV) db.sqlite3* tests/frontends/node_modules
