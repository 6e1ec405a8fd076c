"""Granting the "staff" group admin permissions, for the migrations that do it."""

from django.contrib.auth.management import create_permissions

GROUP = "staff"


def _permissions(apps, wanted):
    """The permissions named in `wanted`; they are created here when the database is new
    (Django creates permissions after migrating, too late for this migration)."""
    Permission = apps.get_model("auth", "Permission")
    ContentType = apps.get_model("contenttypes", "ContentType")
    found = []
    for app_label, models in wanted.items():
        app_config = apps.get_app_config(app_label)
        app_config.models_module = True
        create_permissions(app_config, apps=apps, verbosity=0)
        app_config.models_module = None
        for model, actions in models.items():
            content_type = ContentType.objects.get(app_label=app_label, model=model)
            codenames = [f"{action}_{model}" for action in actions]
            permissions = Permission.objects.filter(
                content_type=content_type, codename__in=codenames
            )
            if permissions.count() != len(codenames):
                raise LookupError(f"missing permissions of {app_label}.{model}")
            found.extend(permissions)
    return found


def grant(apps, wanted):
    Group = apps.get_model("auth", "Group")
    group, _ = Group.objects.get_or_create(name=GROUP)
    group.permissions.add(*_permissions(apps, wanted))


def revoke(apps, wanted):
    Group = apps.get_model("auth", "Group")
    group = Group.objects.filter(name=GROUP).first()
    if group is not None:
        group.permissions.remove(*_permissions(apps, wanted))
