from django.contrib import admin

from config.admin_tools import AppendOnlyAdmin
from notifications.models import Event


@admin.register(Event)
class EventAdmin(AppendOnlyAdmin):
    """The event log is append-only: staff read it here, nobody edits it."""

    list_display = ("id", "type", "audience", "created_at")
    list_filter = ("type",)
    search_fields = ("audience", "type")
    date_hierarchy = "created_at"
