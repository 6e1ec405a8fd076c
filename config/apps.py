from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _

from core.navigation import Page, page_register


class ConfigConfig(AppConfig):
    """Project-wide pieces: roles, the home page, health, the worker heartbeat, demo data."""

    name = "config"
    label = "config"
    verbose_name = _("Confirma")

    def ready(self) -> None:
        from config import checks  # noqa: F401  (registers the checks: Django's way is at ready())

        page_register(
            Page(
                "activity",
                _("Live activity"),
                _("Events addressed to you, live."),
                order=90,
                everyone=True,
            )
        )
        page_register(
            Page("admin:index", _("Administration"), _("Fix anything, audited."), ("staff",), 200)
        )
        page_register(
            Page("api-docs", _("API documentation"), _("The OpenAPI reference."), ("staff",), 210)
        )
        page_register(
            Page(
                "operations",
                _("Integration health"),
                _("Payments vs deliveries, webhooks, gaps, printers."),
                ("staff",),
                205,
            )
        )
        page_register(
            Page(
                "healthz",
                _("System health"),
                _("Database, channel layer, worker."),
                ("staff",),
                220,
            )
        )
