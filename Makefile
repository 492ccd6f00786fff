# The two commands a newcomer runs: `make demo` and `make test`. Both create .venv when it is missing.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp
# The example user package the demo runs; `handoff up --app $(APP)` explores it.
APP := examples.restaurant:app

.PHONY: test demo up bench lint install clean browser

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	# The distribution was called `handoff` before it became `temporal-handoff`: an old editable install of it
	# would keep the bare folder names importable. Nothing else in this venv is called that.
	-$(BIN)/python -m pip uninstall --quiet --yes handoff 2>/dev/null
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/mypy

# Four workers (most tests wait on servers, not on the two cores), each test file on one (its fixtures and servers
# stay together); plain `pytest` runs serially.
test: lint browser
	$(BIN)/pytest -n 4 --dist loadfile

# The inbox's browser tests drive Debian's Chromium through Playwright; no browser is ever downloaded.
browser:
	@test -x /usr/bin/chromium || { echo "Installing Debian's chromium for the inbox's browser tests"; \
		apt-get install -y chromium >/dev/null || sudo apt-get install -y chromium >/dev/null; }

demo: $(STAMP)
	$(BIN)/handoff check --app $(APP)
	$(BIN)/python -m examples.restaurant.demo

up: $(STAMP)
	$(BIN)/handoff up --app $(APP)

bench: $(STAMP)
	$(BIN)/python bench/run_all.py

clean:
	rm -rf $(VENV) .handoff .pytest_cache .mypy_cache .ruff_cache
