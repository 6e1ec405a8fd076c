"""Staff see the refused webhooks (read-only), like the deliveries they come next to."""

from django.db import migrations

from core import staff_group as _staff

PERMISSIONS = {"payments": {"webhookrefusal": ("view",)}}


def grant(apps, schema_editor):
    _staff.grant(apps, PERMISSIONS)


def revoke(apps, schema_editor):
    _staff.revoke(apps, PERMISSIONS)


class Migration(migrations.Migration):
    dependencies = [
        ("config", "0003_staff_permissions"),
        ("payments", "0005_intake"),
    ]

    operations = [migrations.RunPython(grant, revoke)]
