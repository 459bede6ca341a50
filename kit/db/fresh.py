"""A first start on an empty database: the tables of the migrations' final
state created in one pass, every migration recorded as applied, instead of
replaying the migrations one by one.

Replaying ~57 migrations re-renders Django's model state after each operation:
~0.85 s of CPU, nearly half of the time from ``serve`` to the first 200 on a
first start (bench/notes.md). Creating tables straight from models is what
Django's own test runner does for a database without migrations; the result
is the database ``migrate`` builds only if no migration does more than its
models say. That holds when every code operation in the plan (``RunPython``,
``RunSQL``) is one known to do nothing on an empty database:
:data:`NOTHING_ON_EMPTY` lists them by migration, each read and named here. A
plan with any other code operation takes the ordinary ``migrate``, and
tests/test_fresh_schema.py fails until the new migration is read and listed
(or left to ``migrate``); the same test checks that both ways give the same
tables, columns, indexes and constraints, on SQLite and PostgreSQL.

Only a database with no table at all takes this path (``serve``'s first start);
any other state, including a half-migrated one, is ``migrate``'s.
"""

from __future__ import annotations

from collections.abc import Sequence

from django.apps import apps as global_apps
from django.core.management.sql import emit_post_migrate_signal, emit_pre_migrate_signal
from django.db import connections
from django.db.migrations import Migration
from django.db.migrations.executor import MigrationExecutor
from django.db.migrations.operations import RunPython, RunSQL, SeparateDatabaseAndState
from django.db.migrations.operations.base import Operation
from django.db.migrations.recorder import MigrationRecorder

# Migrations whose code operations read or move rows only, so do nothing when
# there are no rows (elidable code needs no entry). (app label, migration
# name): what the code does.
NOTHING_ON_EMPTY: dict[tuple[str, str], str] = {
    ("contenttypes", "0002_remove_content_type_name"): "fills a column of existing rows",
    ("auth", "0011_update_proxy_permissions"): (
        "points existing proxy permissions at the proxy's content type (the content"
        " types it may create, post_migrate creates too)"
    ),
    ("accounts", "0004_project"): "renames an existing content type row",
    ("registry", "0011_quota_usage"): "charges existing projects for what they hold",
}


def _code_operations(operations: Sequence[Operation]) -> list[Operation]:
    found: list[Operation] = []
    for op in operations:
        if isinstance(op, SeparateDatabaseAndState):
            found += _code_operations(op.database_operations)
        elif isinstance(op, RunPython | RunSQL):
            found.append(op)
    return found


def needs_migrate(migration: Migration) -> bool:
    """Whether ``migration`` does something its models do not say: a code
    operation not known to do nothing on an empty database."""
    known = (migration.app_label, migration.name) in NOTHING_ON_EMPTY
    return not known and any(not op.elidable for op in _code_operations(migration.operations))


def create_if_empty(using: str = "default") -> bool:
    """Create the tables of the migrations' final state and record every
    migration as applied, if the database has no table at all and the plan
    allows it (module docstring); True if it did, False if ``migrate`` is to
    run instead."""
    connection = connections[using]
    if connection.introspection.table_names():
        return False
    executor = MigrationExecutor(connection)
    plan = executor.migration_plan(executor.loader.graph.leaf_nodes(), clean_start=True)
    if any(needs_migrate(migration) for migration, _backwards in plan):
        return False
    connection.prepare_database()
    emit_pre_migrate_signal(0, False, using, apps=global_apps, plan=plan)
    # The models as the migrations leave them (one render of the final state),
    # not as the code declares them: where the two differ without a migration
    # (an auto-created many-to-many table's id takes DEFAULT_AUTO_FIELD in
    # migration state, not the app's own default), the database must be what
    # migrate would have built.
    final = executor.loader.project_state().apps
    models = [model for model in final.get_models() if model._meta.can_migrate(connection)]
    recorder = MigrationRecorder(connection)
    # One transaction where DDL is transactional (both backends Berth supports):
    # a failure leaves the database empty, to be tried again.
    with connection.schema_editor(atomic=True) as editor:
        for model in models:
            editor.create_model(model)
        editor.create_model(recorder.Migration)
        applied = [
            replaced
            for migration, _backwards in plan
            for replaced in (migration.replaces or [(migration.app_label, migration.name)])
        ]
        recorder.migration_qs.bulk_create(
            [recorder.Migration(app=app, name=name) for app, name in applied]
        )
    emit_post_migrate_signal(0, False, using, apps=global_apps, plan=plan)
    return True
