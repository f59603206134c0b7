# ticketero-nfr — the two commands a newcomer needs are `make demo` and `make test`.
# Both install what they need first (Debian packages, .venv) and find or start PostgreSQL and RabbitMQ.

SHELL := /bin/bash
PY    := .venv/bin/python
ENV   := . .work/services.env &&

# Extra arguments for the demo, e.g. `make demo DEMO_ARGS="--scenario PERF-02"`.
DEMO_ARGS ?=
# Extra arguments for pytest, e.g. `make test PYTEST_ARGS="-k exporters"`.
PYTEST_ARGS ?=
# One module for `make mutation`, e.g. `make mutation MUTATE=loadgen/units.py` (default: every listed one).
MUTATE ?=

.PHONY: demo test lint bench mutation install services docker clean help

help:            ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | sed -E 's/:.*## /\t/' | expand -t 16

install:         ## Debian packages and the project's virtualenv
	@scripts/bootstrap.sh

services: install ## reach (or privately start) PostgreSQL and RabbitMQ; writes .work/services.env
	@scripts/services.sh

docker:          ## a running Docker engine and the busybox test image
	@scripts/dockerd.sh >/dev/null

# make turns every failing recipe into its own exit code 2; ./ticketero-nfr demo keeps the tool's 0/1/2.
demo:            ## main job: local stack + PERF-01 + verdict from Prometheus alerts + reports
	@./ticketero-nfr demo $(DEMO_ARGS)

lint: install    ## ruff lint and format check, mypy
	@.venv/bin/ruff check .
	@.venv/bin/ruff format --check .
	@.venv/bin/mypy

test: services docker lint ## every test, against the real services
	@$(ENV) .venv/bin/pytest $(PYTEST_ARGS)

bench: services  ## the benchmark scripts (prints their figures)
	@scripts/bootstrap.sh --with-bench
	@for script in bench/*.py; do echo "== $$script"; $(ENV) $(PY) $$script || exit 1; done

mutation:        ## mutation testing of the pure-logic modules (docs/testing.md); MUTATE=path/to/module.py for one
	@scripts/bootstrap.sh --with-mutation
	@rm -rf mutants && mkdir -p .work
	@echo "mutation: mutmut, one worker, each mutant against its unit tests (all modules: ~20 min; log .work/mutmut.log)"
	@.venv/bin/mutmut run --max-children 1 $(if $(MUTATE),"$(subst /,.,$(MUTATE:.py=)).*") >.work/mutmut.log 2>&1 \
		|| { tail -c 3000 .work/mutmut.log; exit 1; }
	@$(PY) scripts/mutation_report.py $(if $(MUTATE),--module $(MUTATE))

clean:           ## remove generated files (keeps .venv)
	rm -rf .work results mutants .pytest_cache .mypy_cache .ruff_cache
