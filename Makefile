# pipeline-scoring: the two commands are `make run` and `make test`.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
DEMO   := demo
PORT   ?= 8000
STAMP  := $(VENV)/.installed
SUDO   := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

export MLFLOW_DISABLE_TELEMETRY := true
export DO_NOT_TRACK := true

.PHONY: install system-deps run serve test check demo-data validate train constraints clean

install: $(STAMP)

$(STAMP): pyproject.toml constraints.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -c constraints.txt -e '.[dev]'
	touch $(STAMP)

# What the tests need from Debian: Chromium (the report, in a real headless browser) and PostgreSQL
# (MLflow's team store). The tests start their own servers; this only installs the packages.
system-deps:
	@command -v chromium >/dev/null && ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || { \
	  $(SUDO) apt-get update -qq && \
	  $(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium postgresql >/dev/null; }

demo-data: install
	$(BIN)/scoring demo-data $(DEMO) --deals 30000 --force

# The demo's files: deals, stage history and the reps' close dates as they changed (its field history).
DATA   = --deals $(DEMO)/deals.csv --history $(DEMO)/stage_history.csv --field-history $(DEMO)/field_history.csv \
         --config $(DEMO)/pipeline.toml

validate: demo-data
	$(BIN)/scoring validate $(DATA)

train: validate
	$(BIN)/scoring train $(DATA)
	$(BIN)/scoring stages

# `run` trains and registers a champion in the embedded MLflow store (./mlflow.db), scores and
# forecasts the demo's open deals with it, imports the demo into the pipeline store (./pipeline.db), then
# serves the API and the managers' page on 127.0.0.1:$(PORT), 8000 unless given (make run PORT=8010;
# Ctrl-C stops it).
run: train
	$(BIN)/scoring score --input $(DEMO)/open_deals.csv --field-history $(DEMO)/field_history.csv --out $(DEMO)/scored.csv --force
	$(BIN)/scoring forecast --input $(DEMO)/open_deals.csv --field-history $(DEMO)/field_history.csv --deals $(DEMO)/deals.csv \
	    --out $(DEMO)/forecast.json --force
	$(BIN)/scoring import $(DATA)
	@echo "Serving on http://127.0.0.1:$(PORT) (managers' page: http://127.0.0.1:$(PORT)/, API docs: http://127.0.0.1:$(PORT)/docs)"
	$(BIN)/scoring serve --host 127.0.0.1 --port $(PORT)

serve: install
	$(BIN)/scoring serve --host 127.0.0.1 --port $(PORT)

# Lint (ruff) and types (mypy, of the library), both configured in pyproject.toml, before the whole test suite.
check: install
	$(BIN)/ruff check src training serving cli tests benchmarks
	$(BIN)/mypy

test: install system-deps check
	$(BIN)/python -m pytest

constraints:
	$(BIN)/python -m pip freeze --exclude-editable | grep -v '^-e' > constraints.new
	{ echo "# Exact versions installed by 'make install' (pip install -c constraints.txt)."; \
	  echo "# Regenerate after changing dependencies: make constraints"; cat constraints.new; } > constraints.txt
	rm constraints.new

clean:
	rm -rf $(VENV) $(DEMO) .pytest_cache models/*.joblib models/*.version mlflow.db mlflow.db.lock mlartifacts \
	  pipeline.db pipeline.db-wal pipeline.db-shm
