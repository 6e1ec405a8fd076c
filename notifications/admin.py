from django import forms
from django.contrib import admin
from django.utils.translation import gettext_lazy as _
from django.utils.translation import ngettext_lazy

from core.admin_tools import AppendOnlyAdmin, ReadOnlyModelAdmin, confirm_with_form
from notifications.models import Alert, Event
from notifications.services import alert_resolve


@admin.register(Event)
class EventAdmin(AppendOnlyAdmin):
    """The event log is append-only: staff read it here, nobody edits it."""

    list_display = ("id", "type", "audience", "created_at")
    list_filter = ("type",)
    search_fields = ("audience", "type")
    date_hierarchy = "created_at"
    ordering = ("-created_at", "-id")


class ResolveForm(forms.Form):
    notes = forms.CharField(
        label=_("Notes"),
        required=False,
        widget=forms.Textarea(attrs={"rows": 3}),
        max_length=2000,
        help_text=_("What was done about it (optional)."),
    )


@admin.register(Alert)
class AlertAdmin(ReadOnlyModelAdmin):
    """Open alerts are the staff's to-do list; resolving one records who did it and why."""

    list_display = (
        "id",
        "code",
        "short_message",
        "count",
        "first_raised_at",
        "last_raised_at",
        "resolved_at",
        "resolved_by",
    )
    list_filter = (("resolved_at", admin.EmptyFieldListFilter), "code", "last_raised_at")
    search_fields = ("code", "message", "dedupe_key", "notes")
    date_hierarchy = "last_raised_at"
    readonly_fields = (
        "code",
        "dedupe_key",
        "message",
        "context",
        "first_raised_at",
        "last_raised_at",
        "last_notified_at",
        "count",
        "resolved_at",
        "resolved_by",
    )
    actions = ["mark_resolved"]

    def has_add_permission(self, request):
        return False

    def has_delete_permission(self, request, obj=None):
        return False

    @admin.display(description=_("message"))
    def short_message(self, obj):
        return obj.message if len(obj.message) <= 80 else obj.message[:79] + "…"

    @admin.action(description=_("Mark the selected alerts resolved"), permissions=["change"])
    def mark_resolved(self, request, queryset):
        def apply(alert, data):
            alert_resolve(alert_id=alert.pk, user=request.user, notes=data["notes"])

        return confirm_with_form(
            self,
            request,
            queryset.filter(resolved_at__isnull=True),
            title=_("Mark alerts resolved"),
            form_class=ResolveForm,
            apply=apply,
            success=ngettext_lazy(
                "%(count)d alert resolved: %(objects)s.",
                "%(count)d alerts resolved: %(objects)s.",
                "count",
            ),
            name=lambda alert: f"#{alert.pk} {alert.code}",
        )
