# Berth: the two commands are `make run` and `make test` (see README.md).
.PHONY: run test deps lint

PY ?= python3

.venv/.berth-run: pyproject.toml
	test -x .venv/bin/python || $(PY) -m venv .venv
	.venv/bin/pip install -q -e .
	touch $@

run: .venv/.berth-run
	.venv/bin/python manage.py serve

deps:
	bash scripts/test-deps.sh

lint: deps
	.venv/bin/ruff check .
	.venv/bin/ruff format --check .
	.venv/bin/python manage.py makemigrations --check --dry-run

test: lint
	.venv/bin/python -m pytest
