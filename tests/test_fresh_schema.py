"""A first start's schema (kit/db/fresh.py) is the one the migrations build:
the same tables, columns, indexes and constraints, migration records, content
types and permissions (SQLite, and PostgreSQL in the suite's second pass); a
migration with code not known to do nothing on an empty database sends the
first start to ``migrate``."""

from __future__ import annotations

import re
from typing import Any

import pytest
from django.core.management import call_command
from django.db import connection, migrations
from django.db.migrations.executor import MigrationExecutor
from django.db.migrations.recorder import MigrationRecorder

from kit.db import fresh

POSITIONAL = re.compile(r"fk_\d+|__unnamed_constraint_\d+__")


def _drop_everything() -> None:
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute("DROP SCHEMA public CASCADE")
            cursor.execute("CREATE SCHEMA public")
            return
        cursor.execute("PRAGMA foreign_keys=OFF")
        try:
            for table in connection.introspection.table_names(cursor):
                cursor.execute(f"DROP TABLE {connection.ops.quote_name(table)}")
        finally:
            cursor.execute("PRAGMA foreign_keys=ON")


def _schema() -> dict[str, Any]:
    """Everything Django's introspection tells of the database, in a form that
    compares (column order aside: an added column comes last)."""
    tables: dict[str, Any] = {}
    with connection.cursor() as cursor:
        for table in connection.introspection.table_names(cursor):
            columns = sorted(
                tuple(str(value) for value in column)
                for column in connection.introspection.get_table_description(cursor, table)
            )
            # SQLite names foreign keys and unnamed constraints by their
            # position in the table's SQL (fk_0, __unnamed_constraint_1__):
            # those are compared by what they are, not by name.
            constraints = sorted(
                (
                    "" if POSITIONAL.fullmatch(name) else name,
                    sorted((key, str(value)) for key, value in info.items()),
                )
                for name, info in connection.introspection.get_constraints(cursor, table).items()
            )
            tables[table] = {"columns": columns, "constraints": constraints}
    from django.contrib.auth.models import Permission
    from django.contrib.contenttypes.models import ContentType

    ContentType.objects.clear_cache()
    return {
        "tables": tables,
        "migrations": sorted(MigrationRecorder(connection).applied_migrations()),
        "content types": sorted(ContentType.objects.values_list("app_label", "model")),
        "permissions": sorted(
            Permission.objects.values_list("content_type__app_label", "codename")
        ),
    }


@pytest.mark.django_db(transaction=True)
def test_a_first_start_builds_the_schema_the_migrations_build():
    try:
        _drop_everything()
        assert fresh.create_if_empty() is True
        from_models = _schema()
        _drop_everything()
        call_command("migrate", interactive=False, verbosity=0)
        from_migrations = _schema()
    finally:
        if not connection.introspection.table_names():
            call_command("migrate", interactive=False, verbosity=0)
    assert len(from_models["tables"]) > 40
    assert len(from_models["migrations"]) > 50
    assert from_models["tables"].keys() == from_migrations["tables"].keys()
    for table, shape in from_migrations["tables"].items():
        assert from_models["tables"][table] == shape, table
    assert from_models == from_migrations
    # Nothing left for migrate to do after a first start.
    executor = MigrationExecutor(connection)
    assert executor.migration_plan(executor.loader.graph.leaf_nodes()) == []


@pytest.mark.django_db
def test_a_database_with_tables_is_left_to_migrate():
    before = MigrationRecorder(connection).applied_migrations().keys()
    assert fresh.create_if_empty() is False
    assert MigrationRecorder(connection).applied_migrations().keys() == before


def _noop(apps, schema_editor) -> None:
    pass


def _migration(*operations) -> migrations.Migration:
    migration = migrations.Migration("0099_new_code", "registry")
    migration.operations = list(operations)
    return migration


def test_code_not_read_for_an_empty_database_sends_the_first_start_to_migrate():
    assert fresh.needs_migrate(_migration(migrations.RunPython(_noop)))
    assert fresh.needs_migrate(_migration(migrations.RunSQL("UPDATE x SET y = 1")))
    nested = migrations.SeparateDatabaseAndState(
        database_operations=[migrations.RunSQL("CREATE INDEX i ON t (c)")]
    )
    assert fresh.needs_migrate(_migration(nested))
    # Elidable code is, by Django's definition, not part of the schema.
    assert not fresh.needs_migrate(_migration(migrations.RunPython(_noop, elidable=True)))
    # State-only operations and plain schema operations are what the models say.
    state_only = migrations.SeparateDatabaseAndState(state_operations=[migrations.RunPython(_noop)])
    assert not fresh.needs_migrate(_migration(state_only))
    assert not fresh.needs_migrate(_migration(migrations.DeleteModel("Gone")))


@pytest.mark.django_db
def test_every_listed_migration_exists_and_has_code():
    """The list names real migrations with code in them (no stale entries), and
    every migration with code is either listed or elidable."""
    executor = MigrationExecutor(connection)
    graph = executor.loader.graph
    with_code = {
        key
        for key, migration in graph.nodes.items()
        if any(not op.elidable for op in fresh._code_operations(migration.operations))
    }
    assert set(fresh.NOTHING_ON_EMPTY) <= set(graph.nodes)
    assert set(fresh.NOTHING_ON_EMPTY) <= with_code
    assert with_code <= set(fresh.NOTHING_ON_EMPTY), (
        "a new migration runs code: read it, and list it in kit/db/fresh.py only if it "
        "does nothing on an empty database"
    )
