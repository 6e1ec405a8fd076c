from django.contrib import admin
from django.utils.translation import gettext_lazy as _
from django.utils.translation import ngettext_lazy

from core.admin_tools import AppendOnlyAdmin, ReadOnlyModelAdmin, ResolveForm, confirm_with_form
from notifications.labels import (
    EVENT_TYPE_LABELS,
    alert_label,
    audience_label,
    event_type_label,
)
from notifications.models import Alert, Event
from notifications.services import alert_resolve


class _LabelledCodeFilter(admin.SimpleListFilter):
    """Filter by a code column, each choice shown by its label (codes stay in the URL)."""

    field = ""
    label_of = staticmethod(str)

    def lookups(self, request, model_admin):
        codes = (
            model_admin.get_queryset(request)
            .order_by()
            .values_list(self.field, flat=True)
            .distinct()
        )
        return sorted(((code, self.label_of(code)) for code in codes), key=lambda c: c[1])

    def queryset(self, request, queryset):
        value = self.value()
        return queryset.filter(**{self.field: value}) if value else queryset


class EventTypeFilter(_LabelledCodeFilter):
    title = _("type")
    parameter_name = field = "type"
    label_of = staticmethod(event_type_label)

    def lookups(self, request, model_admin):
        # The known types, not a scan of the (large) event log.
        return sorted(
            ((code, event_type_label(code)) for code in EVENT_TYPE_LABELS), key=lambda c: c[1]
        )


class AlertCodeFilter(_LabelledCodeFilter):
    title = _("alert")
    parameter_name = field = "code"
    label_of = staticmethod(alert_label)


@admin.register(Event)
class EventAdmin(AppendOnlyAdmin):
    """The event log is append-only: staff read it here, nobody edits it."""

    list_display = ("id", "type_label", "audience_label", "created_at")
    list_filter = (EventTypeFilter,)
    search_fields = ("audience", "type")
    date_hierarchy = "created_at"
    ordering = ("-created_at", "-id")

    @admin.display(description=_("type"), ordering="type")
    def type_label(self, obj):
        return event_type_label(obj.type)

    @admin.display(description=_("audience"), ordering="audience")
    def audience_label(self, obj):
        return audience_label(obj.audience)


@admin.register(Alert)
class AlertAdmin(ReadOnlyModelAdmin):
    """Open alerts are the staff's to-do list; resolving one records who did it and why."""

    list_display = (
        "id",
        "code_label",
        "short_message",
        "count",
        "first_raised_at",
        "last_raised_at",
        "resolved_at",
        "resolved_by",
    )
    list_filter = (
        ("resolved_at", admin.EmptyFieldListFilter),
        AlertCodeFilter,
        "last_raised_at",
    )
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

    @admin.display(description=_("alert"), ordering="code")
    def code_label(self, obj):
        return alert_label(obj.code)

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
