# Two entry points: `make demo` and `make test`. Both create .venv on a fresh clone.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.biodl-installed

.PHONY: demo test lint typecheck imports install bench clean browser-deps docs zoo

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

# torch first (the local CPU wheel), so the package's torch requirement pulls nothing else.
$(STAMP): $(BIN)/python pyproject.toml
	$(BIN)/python -m pip install --quiet torch==2.13.0
	$(BIN)/python -m pip install --quiet -e ".[dev]"
	touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(BIN)/biodl demo --output-dir runs/demo

# Retrain the built-in model zoo from examples/zoo/*.yaml (data in ../shared/datasets) and print each card's
# validation metric next to the shipped one (docs/zoo.md). Hours of CPU: run it on purpose.
zoo: $(STAMP)
	$(BIN)/biodl zoo build examples/zoo/*.yaml

lint: $(STAMP)
	$(BIN)/ruff check src tests benchmarks
	$(BIN)/ruff format --check src tests benchmarks || true

typecheck: $(STAMP)
	$(BIN)/mypy

# The layer contracts of src/biodl ([tool.importlinter] in pyproject.toml; docs/architecture.md).
imports: $(STAMP)
	$(BIN)/lint-imports --no-logo --no-cache

# Headless Chromium for the browser tests (Debian packages; never a downloaded browser build).
# Installed only when missing, apt-get exists and we are root; otherwise those tests skip.
browser-deps:
	@if [ ! -x /usr/bin/chromium ] && command -v apt-get >/dev/null 2>&1 && [ "$$(id -u)" = 0 ]; then \
		echo "installing chromium for the browser tests"; \
		(apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver >/dev/null) \
			|| echo "browser-deps: could not install chromium; the browser tests will skip"; \
	fi

# The documentation site (site/): reference pages generated from the code; --strict fails on broken links.
docs: $(STAMP)
	NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs build --strict --quiet

test: $(STAMP) browser-deps
	$(BIN)/ruff check src tests benchmarks
	$(BIN)/ruff format --check src tests benchmarks
	$(BIN)/mypy
	$(BIN)/lint-imports --no-logo --no-cache
	$(MAKE) docs
	$(BIN)/python -m pytest -q -p no:cacheprovider -n 2 --dist loadfile

# Benchmarks write JSON + markdown into benchmarks/results/ (minutes; not part of `make test`).
bench: $(STAMP)
	@for script in benchmarks/*.py; do \
		case $$script in */_common.py|*/summary.py) continue;; esac; \
		echo "== $$script"; $(BIN)/python $$script || exit 1; \
	done
	$(BIN)/python benchmarks/summary.py

clean:
	rm -rf runs site .pytest_cache .mypy_cache
