"""Staff see the operators' desk assignments (read-only: an append-only trail)."""

from django.db import migrations

from core import staff_group as _staff

PERMISSIONS = {"tickets": {"deskassignment": ("view",)}}


def grant(apps, schema_editor):
    _staff.grant(apps, PERMISSIONS)


def revoke(apps, schema_editor):
    _staff.revoke(apps, PERMISSIONS)


class Migration(migrations.Migration):
    dependencies = [
        ("tickets", "0003_desks"),
        ("config", "0003_staff_permissions"),
    ]

    operations = [migrations.RunPython(grant, revoke)]
