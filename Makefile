# One command each: `make serve` runs rollcall, `make test` runs the tests. Both set up .venv on first use.
PYTHON ?= python3
VENV   ?= .venv
BIN     = $(VENV)/bin

.PHONY: serve test binary clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

# Editable installs: the venv runs this checkout's code, so an edit needs no reinstall.
$(VENV)/.installed: $(BIN)/python pyproject.toml
	$(BIN)/python -m pip install --quiet -e .
	touch $@

$(VENV)/.dev: $(BIN)/python pyproject.toml
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $@

serve: $(VENV)/.installed
	$(BIN)/rollcall serve $(ARGS)

# The Debian packages the tests need (scripts/system-packages.sh), checked again whenever its list changes.
$(VENV)/.system: $(BIN)/python scripts/system-packages.sh
	scripts/system-packages.sh
	touch $@

test: $(VENV)/.dev $(VENV)/.system
	$(BIN)/ruff check app tests bench
	$(BIN)/mypy app
	$(BIN)/pytest $(ARGS)

# The single-file executable dist/rollcall (PyInstaller, see build.spec).
binary: $(VENV)/.binary
	$(BIN)/pyinstaller --noconfirm --clean --log-level WARN build.spec
	dist/rollcall check

$(VENV)/.binary: $(BIN)/python pyproject.toml
	$(BIN)/python -m pip install --quiet -e '.[binary]'
	touch $@

clean:
	rm -rf $(VENV) build dist *.egg-info

# The benchmark (bench/README.md): rollcall against a bare aiohttp ceiling under wrk, on a fresh database, pinned to
# CPUs with taskset, on both engines (SQLite, and PostgreSQL on a throw-away cluster the bench starts; ARGS='--db
# sqlite' for one). `make bench ARGS=--quick` is the smoke run. wrk comes from the Debian package, PostgreSQL from
# scripts/system-packages.sh, py-spy (the profiles of the worst ratios) from the bench extra.
.PHONY: bench
bench: $(VENV)/.bench $(VENV)/.system
	command -v wrk >/dev/null 2>&1 || (apt-get update && apt-get install -y wrk)
	$(BIN)/python bench/run.py $(ARGS)

$(VENV)/.bench: $(BIN)/python pyproject.toml
	$(BIN)/python -m pip install --quiet -e '.[bench]'
	touch $@

# The binary's size, start-up time and memory beside the same baselines (bench/footprint.py).
.PHONY: footprint
footprint: binary
	$(BIN)/python bench/footprint.py $(ARGS)

# The console's members page at 100,000 members, timed server-side against its 100 ms goal (bench/console.py).
.PHONY: bench-console
bench-console: $(VENV)/.installed
	$(BIN)/python bench/console.py $(ARGS)

# One PNG per console page under docs/screenshots/, of a small company played by the simulator, taken by the
# browser tests' chromium (tests/browser/screenshots.py).
.PHONY: screenshots
screenshots: $(VENV)/.dev $(VENV)/.system
	$(BIN)/python -m tests.browser.screenshots $(ARGS)
