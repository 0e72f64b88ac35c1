PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: install demo lint test chaos bench clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[test]'
	touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(BIN)/sms-worker demo

lint: $(STAMP)
	$(BIN)/ruff check sms_worker tests benchmarks
	$(BIN)/ruff format --check sms_worker tests benchmarks
	$(BIN)/mypy

# Tests run in parallel (pytest-xdist): most of them wait on sockets, not on the CPU, and each
# worker starts its own redis-server and uses its own databases. The large chaos runs are a
# step of their own (make chaos), one at a time: they kill and starve processes on purpose.
TEST_WORKERS ?= 4

test: lint
	$(BIN)/python -m pytest -n $(TEST_WORKERS) --dist loadgroup -m "not chaos"

chaos: $(STAMP)
	$(BIN)/python -m pytest -m chaos

bench: $(STAMP)
	$(BIN)/python benchmarks/run.py

clean:
	rm -rf $(VENV) .sms_worker .pytest_cache .hypothesis *.egg-info
