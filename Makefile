# Berth: the two commands are `make run` and `make test` (see README.md).
.PHONY: run test test-fast deps lint

PY ?= python3

# pip's own progress (one line per package) shows while it installs: ~35 s
# the first time, with nothing else on screen otherwise.
.venv/.berth-run: pyproject.toml
	@echo "== make run: installing Berth and its dependencies into .venv (first run: about a minute)"
	test -x .venv/bin/python || $(PY) -m venv .venv
	.venv/bin/pip install --disable-pip-version-check --progress-bar on -e .
	@echo "== installed; starting Berth"
	touch $@

run: .venv/.berth-run
	.venv/bin/python manage.py serve

deps:
	bash scripts/test-deps.sh

lint: deps
	.venv/bin/ruff check .
	.venv/bin/ruff format --check .
	.venv/bin/lint-imports
	.venv/bin/mypy
	.venv/bin/python manage.py makemigrations --check --dry-run

# The suite runs on each database Berth supports: SQLite (the embedded default)
# and PostgreSQL (a private server from Debian's package, scripts/postgres.sh,
# stopped afterwards). TEST_DATABASES=sqlite (or postgres) runs one only;
# PYTEST_ARGS go to every run. Every run happens; any failure fails the target.
# Tests marked dbindependent (own servers, never the suite's database: the
# replica test, the bench smoke run, the deploy files) run in the first pass only.
TEST_DATABASES ?= sqlite postgres
PYTEST_ARGS ?=

test: lint
	@failed=; once=; for db in $(TEST_DATABASES); do \
	  case $$db in \
	    sqlite) echo "== the test suite on SQLite"; \
	      env -u DATABASE_URL .venv/bin/python -m pytest $(PYTEST_ARGS) || failed="$$failed $$db"; \
	      once=1;; \
	    postgres) url=$$(bash scripts/postgres.sh start) || exit 1; \
	      echo "== the test suite on PostgreSQL ($$url)"; \
	      DATABASE_URL=$$url BERTH_TEST_ONCE_DONE=$$once .venv/bin/python -m pytest $(PYTEST_ARGS) || failed="$$failed $$db"; \
	      bash scripts/postgres.sh stop;; \
	    *) echo "TEST_DATABASES: unknown database $$db"; exit 2;; \
	  esac; \
	done; \
	if [ -n "$$failed" ]; then echo "== tests failed on:$$failed"; exit 1; fi

# The developer loop (docs/testing.md): in-process tests only, on SQLite, with
# the venv as it is: no installs, no servers, no real clients, no PostgreSQL.
FAST_MARKERS = not clients and not slow and not live and not dbindependent and not fuzz

test-fast:
	env -u DATABASE_URL BERTH_TEST_FAST=1 .venv/bin/python -m pytest -p no:cacheprovider -q -m "$(FAST_MARKERS)" $(PYTEST_ARGS)

# The portal's translations (docs/portal.md, "Languages"): extract Berth's
# strings into locale/*/django.po, translate the new entries, then compile the
# .mo files that are committed beside them (needs gettext).
MESSAGE_IGNORES = -i '.venv/*' -i 'tests/*' -i 'data/*' -i '.peers/*' -i 'bench/*' -i 'deploy/*'
.PHONY: messages
messages:
	.venv/bin/python manage.py makemessages -l zh_Hans --no-location $(MESSAGE_IGNORES)
	.venv/bin/python manage.py compilemessages -l zh_Hans $(MESSAGE_IGNORES)

# Benchmarks side by side with Distribution and Pulp (docs/benchmarks.md).
# BENCH_ARGS="--quick" or "--only berth,distribution-2.8 --workloads manifests" for parts.
.PHONY: bench
bench: .venv/.berth-run
	.venv/bin/python -m bench.run $(BENCH_ARGS)
	# Garbage collection of 100,000 orphan blobs with pushes beside it (docs/gc.md).
	.venv/bin/python -m bench.gc_sweep $(GC_BENCH_ARGS)
