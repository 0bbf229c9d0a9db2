# The README's two commands: `make demo` and `make test`. Both build .venv on first use.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test lint bench fuzz clean

$(STAMP): pyproject.toml
	test -d $(VENV) || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $(STAMP)

demo: $(STAMP)
	rm -rf demo-lake
	$(BIN)/wharf --lake demo-lake demo

test: $(STAMP)
	$(BIN)/python -m pytest -q -n 2

lint: $(STAMP)
	$(BIN)/ruff check src tests bench

# A longer fuzz run than `make test` does: WHARF_FUZZ_EXAMPLES mutated statements (default 5,000).
fuzz: $(STAMP)
	WHARF_FUZZ_RANDOM=1 WHARF_FUZZ_EXAMPLES=$${WHARF_FUZZ_EXAMPLES:-5000} $(BIN)/python -m pytest -q tests/test_fuzz.py

bench: $(STAMP)
	$(BIN)/python -m bench all

clean:
	rm -rf $(VENV) demo-lake .pytest_cache
