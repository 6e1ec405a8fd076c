from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class CoreConfig(AppConfig):
    """What every app builds on: errors, roles, text, the admin and API helpers,
    navigation, logging, commands, the task queue. It imports no other Confirma app."""

    name = "core"
    label = "core"
    verbose_name = _("Confirma core")
