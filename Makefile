# Two commands from a fresh clone (only Python 3.11 needed): `make run` and `make test`.
# Both install what they need: uv into .tools/, then the locked dependencies into .venv/.

PYTHON ?= python3
UV_VERSION := 0.13.9
TOOLS := .tools
UV := $(TOOLS)/bin/uv
VENV := .venv
SYNCED := $(VENV)/.synced
export UV_PYTHON_DOWNLOADS := never
export UV_PROJECT_ENVIRONMENT := $(VENV)

.PHONY: run test lint bench bench-export bench-registry install clean

$(UV):
	$(PYTHON) -m venv $(TOOLS)
	$(TOOLS)/bin/pip install --quiet --disable-pip-version-check uv==$(UV_VERSION)

$(SYNCED): $(UV) pyproject.toml uv.lock
	$(UV) sync --frozen --python $(PYTHON)
	@touch $@

install: $(SYNCED)

## Start PostgreSQL, NATS (embedded unless MPKS_DATABASE_URL / MPKS_NATS_URL are set) and
## the three services. ARGS="--demo" loads demo data.
run: $(SYNCED)
	$(VENV)/bin/mpks up $(ARGS)

## The whole test suite, against the URLs if set, else an embedded stack.
test: $(SYNCED)
	$(VENV)/bin/python -m pytest $(ARGS)

lint: $(SYNCED)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy

BENCH_SYNCED := $(VENV)/.synced-bench

# The locked dependencies plus the bench group (the chart library). A plain sync (after a
# change of the lock) removes the group again and leaves this mark older than its own.
$(BENCH_SYNCED): $(SYNCED)
	$(UV) sync --frozen --group bench --python $(PYTHON)
	@touch $@

## Commands/s and latency over HTTP next to the machine's raw INSERT rate, lags, PostgreSQL
## CPU; saved as JSON and a PNG chart under .mpks/bench/.
bench: $(BENCH_SYNCED)
	$(VENV)/bin/python -m bench.commands $(ARGS)

## The tenant export against a raw COPY of the same 1,000,000 events (ARGS="--events N").
bench-export: $(SYNCED)
	$(VENV)/bin/python -m bench.export $(ARGS)

## The registry's reads (directory, search, accreditation and licence registers, national
## counts) over HTTP with 10,000 institutions in one province (ARGS="--institutions N").
bench-registry: $(SYNCED)
	$(VENV)/bin/python -m bench.registry $(ARGS)

clean:
	rm -rf $(TOOLS) $(VENV) .mpks
