"""The "staff" group sees partial payments and unmatched money and acts on them (view and
change: the admin actions that accept, refund or attach ask for "change" and go through
the services; the rows' fields stay read-only). As the grants of the other models
(config/migrations/0003_staff_permissions.py) do, without importing the config app."""

from django.contrib.auth.management import create_permissions
from django.db import migrations

GROUP = "staff"
WANTED = {"partialpayment": ("view", "change"), "unmatchedpayment": ("view", "change")}


def _permissions(apps):
    Permission = apps.get_model("auth", "Permission")
    ContentType = apps.get_model("contenttypes", "ContentType")
    app_config = apps.get_app_config("payments")
    app_config.models_module = True
    create_permissions(app_config, apps=apps, verbosity=0)
    app_config.models_module = None
    found = []
    for model, actions in WANTED.items():
        content_type = ContentType.objects.get(app_label="payments", model=model)
        codenames = [f"{action}_{model}" for action in actions]
        permissions = Permission.objects.filter(content_type=content_type, codename__in=codenames)
        if permissions.count() != len(codenames):
            raise LookupError(f"missing permissions of payments.{model}")
        found.extend(permissions)
    return found


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
        ("payments", "0006_partial_and_unmatched_payments"),
        ("config", "0003_staff_permissions"),
    ]

    operations = [migrations.RunPython(grant, revoke)]
