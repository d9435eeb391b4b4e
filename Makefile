# Two commands do all set-up on a fresh machine:
#   make demo   - create .venv, install, run the example ERP workflows through Airflow (embedded defaults)
#   make test   - create .venv, install, run the test suite
PYTHON ?= python3
VENV ?= .venv
STAMP := $(VENV)/.installed

.PHONY: demo test lint bench install clean

$(STAMP): pyproject.toml
	@# The UI browser test drives Debian's Chromium through Playwright (no browser download).
	command -v chromium >/dev/null || (apt-get update -qq && apt-get install -y -qq chromium >/dev/null)
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --upgrade pip
	$(VENV)/bin/pip install --quiet -e '.[test]'
	touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(VENV)/bin/airflow-agents demo

# Two pytest workers: many end-to-end tests mostly wait (minute windows, scheduler round trips).
# --dist loadfile keeps a module's tests (and its fixtures, e.g. the distributed stack) together;
# --no-loadscope-reorder hands modules out in collection order (the long ones first: tests/conftest.py).
test: $(STAMP)
	$(VENV)/bin/python -m pytest -q -p no:cacheprovider -n 2 --dist loadfile --no-loadscope-reorder

# The gates .ci/run runs before the tests (rules and their reasons: pyproject.toml).
lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy

# dag-factory (the parse benchmark's peer, the bench extra) gets a venv of its own: it registers an
# Airflow plugin, which Airflow loads in every task process, so the stack benchmarks (whose floors
# are Airflow alone) refuse to run beside it.
BENCH_PARSE_VENV ?= .venv-bench-parse
bench: $(STAMP)
	for f in bench/bench_batch.py bench/bench_ratelimit.py bench/bench_distributed.py bench/bench_fleet.py; do \
		$(VENV)/bin/python $$f || exit 1; done
	test -x $(BENCH_PARSE_VENV)/bin/python || $(PYTHON) -m venv $(BENCH_PARSE_VENV)
	$(BENCH_PARSE_VENV)/bin/pip install --quiet -e '.[bench]'
	$(BENCH_PARSE_VENV)/bin/python bench/bench_parse.py

clean:
	rm -rf $(VENV) $(BENCH_PARSE_VENV) .airflow-demo
