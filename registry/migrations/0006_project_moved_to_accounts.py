"""Project now belongs to accounts (accounts 0004): registry's content points at
it there. State only: the table ``registry_project`` and its foreign keys stay."""

import django.db.models.deletion
from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("accounts", "0004_project"),
        ("registry", "0005_scheduledrun"),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            database_operations=[],
            state_operations=[
                migrations.AlterField(
                    model_name="repository",
                    name="project",
                    field=models.ForeignKey(
                        on_delete=django.db.models.deletion.PROTECT,
                        related_name="repositories",
                        to="accounts.project",
                    ),
                ),
                migrations.AlterField(
                    model_name="immutablerule",
                    name="project",
                    field=models.ForeignKey(
                        on_delete=django.db.models.deletion.CASCADE,
                        related_name="immutable_rules",
                        to="accounts.project",
                    ),
                ),
                migrations.DeleteModel(name="Project"),
            ],
        ),
    ]
