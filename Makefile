# The README's two commands: `make demo` and `make test`. Both build .venv on first use.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# Test-only, installed without their declared dependencies (see the comment in pyproject.toml's dev extra).
DAFT_RAY := daft==0.7.26 ray==2.60.0

.PHONY: demo test lint bench fuzz clean postgres

$(STAMP): pyproject.toml
	test -d $(VENV) || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	$(BIN)/pip install --quiet --no-deps $(DAFT_RAY)
	touch $(STAMP)

demo: $(STAMP)
	rm -rf demo-lake
	$(BIN)/wharf --lake demo-lake demo

test: $(STAMP) postgres
	$(BIN)/python -m pytest -q -n 2 --durations=30

# The catalog suites also run on PostgreSQL metadata (tests/servers.py starts a throw-away cluster):
# install Debian's server package if it is missing (as root, or through sudo without a password).
postgres:
	@if ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1; then :; else \
		echo "Installing PostgreSQL (Debian package postgresql) for the tests..."; \
		SUDO=$$( [ "$$(id -u)" = 0 ] || echo "sudo -n" ); \
		$$SUDO env DEBIAN_FRONTEND=noninteractive apt-get update -q && \
		$$SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends postgresql \
		|| { echo "Could not install PostgreSQL: run 'apt-get install -y postgresql' as root, then make test again" >&2; exit 1; }; \
	fi

lint: $(STAMP)
	$(BIN)/ruff check src tests bench

# A longer fuzz run than `make test` does: WHARF_FUZZ_EXAMPLES mutated statements (default 5,000).
fuzz: $(STAMP)
	WHARF_FUZZ_RANDOM=1 WHARF_FUZZ_EXAMPLES=$${WHARF_FUZZ_EXAMPLES:-5000} $(BIN)/python -m pytest -q tests/test_fuzz.py

bench: $(STAMP)
	$(BIN)/python -m bench all

clean:
	rm -rf $(VENV) demo-lake .pytest_cache
