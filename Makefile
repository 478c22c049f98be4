# Every target creates .venv and installs the project when it is missing or stale.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: run test serve fuzz fuzz-long bench clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $(STAMP)

run: $(STAMP)
	$(BIN)/amps-sim serve

serve: $(STAMP)
	$(BIN)/amps-sim serve

test: $(STAMP)
	$(BIN)/python -m pytest -q

fuzz: $(STAMP)
	$(BIN)/python -m pytest -q -m fuzz tests/contract

fuzz-long: $(STAMP)
	AMPS_FUZZ_EXAMPLES=2500 $(BIN)/python -m pytest -q -m fuzz tests/contract

bench: $(STAMP)
	$(BIN)/python -m bench.run

clean:
	rm -rf $(VENV) reports build *.egg-info
