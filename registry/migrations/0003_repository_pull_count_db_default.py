# A default in the database too: replicas still running the code from before
# 0002 insert repositories without pull_count (docs/scale-out.md, migrations).

from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("registry", "0002_repository_last_pulled_at_repository_pull_count"),
    ]

    operations = [
        migrations.AlterField(
            model_name="repository",
            name="pull_count",
            field=models.BigIntegerField(db_default=0, default=0),
        ),
    ]
