from django.contrib import admin

from notifications.models import Event


@admin.register(Event)
class EventAdmin(admin.ModelAdmin):
    """The event log is append-only: staff read it here, nobody edits it."""

    list_display = ("id", "type", "audience", "created_at")
    list_filter = ("type",)
    search_fields = ("audience", "type")
    date_hierarchy = "created_at"
    readonly_fields = ("id", "audience", "type", "payload", "created_at")

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False
