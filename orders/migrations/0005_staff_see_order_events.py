"""The "staff" group sees the order audit trail (view only: nobody edits the evidence of
what happened), as config/migrations/0003_staff_permissions.py grants the other trails,
without importing the config app."""

from django.contrib.auth.management import create_permissions
from django.db import migrations

GROUP = "staff"
CODENAMES = ["view_orderevent"]


def _permissions(apps):
    Permission = apps.get_model("auth", "Permission")
    ContentType = apps.get_model("contenttypes", "ContentType")
    app_config = apps.get_app_config("orders")
    app_config.models_module = True
    create_permissions(app_config, apps=apps, verbosity=0)
    app_config.models_module = None
    content_type = ContentType.objects.get(app_label="orders", model="orderevent")
    permissions = Permission.objects.filter(content_type=content_type, codename__in=CODENAMES)
    if permissions.count() != len(CODENAMES):
        raise LookupError("missing permissions of orders.orderevent")
    return list(permissions)


def grant(apps, schema_editor):
    Group = apps.get_model("auth", "Group")
    group, _ = Group.objects.get_or_create(name=GROUP)
    group.permissions.add(*_permissions(apps))


def revoke(apps, schema_editor):
    Group = apps.get_model("auth", "Group")
    group = Group.objects.filter(name=GROUP).first()
    if group is not None:
        group.permissions.remove(*_permissions(apps))


class Migration(migrations.Migration):
    dependencies = [
        ("orders", "0004_order_events"),
        ("config", "0003_staff_permissions"),
    ]

    operations = [migrations.RunPython(grant, revoke)]
