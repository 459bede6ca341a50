"""Backfill the audit trail's project ids (audit 0003 added the column).

Here rather than in ``audit``: the trail sits below ``accounts`` and knows no
projects. A row named a project by name only; it is given the id of the
project of that name that exists now when it was written after that project
was created. Rows of an earlier, deleted project of the same name (and of
projects gone for good) stay NULL: only system readers see them, never the
new project's members. One UPDATE per project.
"""

from django.db import migrations


def backfill(apps, schema_editor):
    AuditEvent = apps.get_model("audit", "AuditEvent")
    Project = apps.get_model("accounts", "Project")
    for pk, name, created_at in Project.objects.values_list("pk", "name", "created_at").iterator():
        AuditEvent.objects.filter(
            project_id__isnull=True, project_name=name, occurred_at__gte=created_at
        ).update(project_id=pk)


def forget(apps, schema_editor):
    apps.get_model("audit", "AuditEvent").objects.update(project_id=None)


class Migration(migrations.Migration):
    dependencies = [
        ("accounts", "0005_robot_stamp"),
        ("audit", "0003_audit_project_id"),
    ]

    operations = [migrations.RunPython(backfill, forget, elidable=True)]
