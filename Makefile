# Every target creates .venv and installs the project when it is missing or stale.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: run test lint serve fuzz fuzz-long bench bench-durability crash-loop dist clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $(STAMP)

# The whole scenario suite against the embedded simulator; non-zero exit on any failure.
run: $(STAMP)
	$(BIN)/amps-sim run scenarios --junit reports/junit.xml --html reports/index.html

serve: $(STAMP)
	$(BIN)/amps-sim serve

test: lint
	$(BIN)/python -m pytest -q

# mypy --strict over the one import name, and ruff. mypy reads build/typecheck/amps_sim, a tree
# of links in the wheel's layout (amps_sim/ with simulator/ and contracts/ inside), because in a
# checkout those two folders join amps_sim only at run time (see pyproject.toml, [tool.mypy]).
TYPECHECK := build/typecheck/amps_sim
lint: $(STAMP)
	rm -rf $(TYPECHECK) && mkdir -p $(TYPECHECK)
	for entry in amps_sim/*; do case "$$entry" in *__pycache__) ;; *) ln -s "$(CURDIR)/$$entry" $(TYPECHECK)/;; esac; done
	ln -s $(CURDIR)/simulator $(TYPECHECK)/simulator
	ln -s $(CURDIR)/contracts $(TYPECHECK)/contracts
	$(BIN)/mypy
	$(BIN)/ruff check .

# Schemathesis against a served simulator, every check and phase, both specs (tests/contract).
# `make test` includes a CI-sized run (one seed, 50 examples per operation); `make fuzz` runs
# only the schemathesis runs, bigger; `make fuzz-long` is a soak for outside CI. Override e.g.
# `make fuzz-long FUZZ_LONG_SEEDS=7,8,9`. Reports: reports/schemathesis-<target>-<seed>.{txt,xml}.
FUZZ_SEEDS ?= 20260508,1,2
FUZZ_EXAMPLES ?= 100
FUZZ_LONG_SEEDS ?= 11,12,13,14
FUZZ_LONG_EXAMPLES ?= 400

fuzz: $(STAMP)
	AMPS_FUZZ_SEEDS=$(FUZZ_SEEDS) AMPS_FUZZ_EXAMPLES=$(FUZZ_EXAMPLES) $(BIN)/python -m pytest -q -m fuzz tests/contract

fuzz-long: $(STAMP)
	AMPS_FUZZ_SEEDS=$(FUZZ_LONG_SEEDS) AMPS_FUZZ_EXAMPLES=$(FUZZ_LONG_EXAMPLES) AMPS_FUZZ_TIMEOUT=7200 \
		$(BIN)/python -m pytest -q -m fuzz tests/contract

# Benchmarks print numbers (ratios measured side by side); see docs/performance.md. The HTTP one
# needs wrk (Debian's package), installed here when missing. `make bench BENCH_ARGS=--quick`.
bench: $(STAMP)
	command -v wrk >/dev/null 2>&1 || (apt-get update -qq && apt-get install -y -qq wrk) || (sudo apt-get update -qq && sudo apt-get install -y -qq wrk)
	$(BIN)/python -m bench.run $(BENCH_ARGS)
	$(BIN)/python -m bench.webhooks

# serve --state-dir killed with SIGKILL at random moments, many rounds (make test runs 3).
CRASH_ROUNDS ?= 40
crash-loop: $(STAMP)
	AMPS_CRASH_ROUNDS=$(CRASH_ROUNDS) $(BIN)/python -m pytest -q tests/durability -k kill

# Push throughput with and without --state-dir (interleaved pairs), and restart time.
bench-durability: $(STAMP)
	$(BIN)/python -m bench.durability

# The wheel partners install (dist/amps_sim-VERSION-py3-none-any.whl).
dist: $(STAMP)
	$(BIN)/python -m pip wheel --no-deps --quiet -w dist .

clean:
	rm -rf $(VENV) reports build dist *.egg-info
