# pipeline-scoring: the two commands are `make run` and `make test`.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
DEMO   := demo
STAMP  := $(VENV)/.installed

export MLFLOW_DISABLE_TELEMETRY := true
export DO_NOT_TRACK := true

.PHONY: install run test demo-data validate constraints clean

install: $(STAMP)

$(STAMP): pyproject.toml constraints.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -c constraints.txt -e '.[dev]'
	touch $(STAMP)

demo-data: install
	$(BIN)/scoring demo-data $(DEMO)

validate: demo-data
	$(BIN)/scoring validate --deals $(DEMO)/deals.csv --history $(DEMO)/stage_history.csv --config $(DEMO)/pipeline.toml

# Training and serving land with their issues; until then `run` makes and checks the demo data.
run: validate

test: install
	$(BIN)/python -m pytest

constraints:
	$(BIN)/python -m pip freeze --exclude-editable | grep -v '^-e' > constraints.new
	{ echo "# Exact versions installed by 'make install' (pip install -c constraints.txt)."; \
	  echo "# Regenerate after changing dependencies: make constraints"; cat constraints.new; } > constraints.txt
	rm constraints.new

clean:
	rm -rf $(VENV) $(DEMO) .pytest_cache
