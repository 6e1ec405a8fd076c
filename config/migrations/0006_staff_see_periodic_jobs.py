"""Staff see the periodic jobs (read-only), next to the worker heartbeats."""

from django.db import migrations

from core import staff_group as _staff

PERMISSIONS = {"config": {"periodicjob": ("view",)}}


def grant(apps, schema_editor):
    _staff.grant(apps, PERMISSIONS)


def revoke(apps, schema_editor):
    _staff.revoke(apps, PERMISSIONS)


class Migration(migrations.Migration):
    dependencies = [
        ("config", "0005_periodic_jobs"),
    ]

    operations = [migrations.RunPython(grant, revoke)]
