"""Project moves from registry to accounts (identity and access own it; the
registry's content builds on it). State only: the table stays
``registry_project`` and no row is touched. registry 0006 drops it from
registry's state. The content type follows, so admin history and any
permission rows keep pointing at it."""

import django.db.models.deletion
from django.conf import settings
from django.db import migrations, models


def _move_content_type(apps, schema_editor, source="registry", target="accounts"):
    content_types = apps.get_model("contenttypes", "ContentType")
    db = schema_editor.connection.alias
    if not content_types.objects.using(db).filter(app_label=target, model="project").exists():
        content_types.objects.using(db).filter(app_label=source, model="project").update(
            app_label=target
        )


def _move_content_type_back(apps, schema_editor):
    _move_content_type(apps, schema_editor, source="accounts", target="registry")


class Migration(migrations.Migration):
    dependencies = [
        ("accounts", "0003_systemsetting"),
        ("contenttypes", "0002_remove_content_type_name"),
        ("registry", "0005_scheduledrun"),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            database_operations=[],
            state_operations=[
                migrations.CreateModel(
                    name="Project",
                    fields=[
                        (
                            "id",
                            models.BigAutoField(
                                auto_created=True,
                                primary_key=True,
                                serialize=False,
                                verbose_name="ID",
                            ),
                        ),
                        ("name", models.CharField(max_length=255, unique=True)),
                        ("public", models.BooleanField(db_index=True, default=False)),
                        ("metadata", models.JSONField(blank=True, default=dict)),
                        ("created_at", models.DateTimeField(auto_now_add=True)),
                        ("updated_at", models.DateTimeField(auto_now=True)),
                        (
                            "owner",
                            models.ForeignKey(
                                blank=True,
                                null=True,
                                on_delete=django.db.models.deletion.SET_NULL,
                                related_name="owned_projects",
                                to=settings.AUTH_USER_MODEL,
                            ),
                        ),
                    ],
                    options={"db_table": "registry_project", "ordering": ["name"]},
                ),
                migrations.AlterField(
                    model_name="member",
                    name="project",
                    field=models.ForeignKey(
                        on_delete=django.db.models.deletion.CASCADE,
                        related_name="members",
                        to="accounts.project",
                    ),
                ),
                migrations.AlterField(
                    model_name="robot",
                    name="project",
                    field=models.ForeignKey(
                        blank=True,
                        null=True,
                        on_delete=django.db.models.deletion.CASCADE,
                        related_name="robots",
                        to="accounts.project",
                    ),
                ),
            ],
        ),
        migrations.RunPython(_move_content_type, _move_content_type_back),
    ]
