from django.contrib import admin, messages
from django.utils.translation import gettext_lazy as _
from django.utils.translation import ngettext_lazy

from core.admin_tools import (
    AppendOnlyAdmin,
    ReadOnlyInline,
    ReadOnlyModelAdmin,
    ReasonForm,
    confirm_with_form,
)
from tickets.models import (
    DeskAssignment,
    Kiosk,
    Printer,
    PrintJob,
    Service,
    Ticket,
    TicketEvent,
)
from tickets.services import kiosk_token_rotate
from tickets.services.desks import ticket_reprint_request


@admin.register(Service)
class ServiceAdmin(admin.ModelAdmin):
    list_display = ("prefix", "name", "price", "currency", "active", "display_order")
    list_editable = ("active", "display_order")


class TicketEventInline(ReadOnlyInline):
    model = TicketEvent
    fields = ("created_at", "type", "from_status", "to_status", "actor", "data")
    ordering = ("-created_at", "-id")


class PrintJobInline(ReadOnlyInline):
    model = PrintJob
    fields = (
        "created_at",
        "printer",
        "status",
        "attempts",
        "reprint_marked",
        "last_error",
        "requested_by",
        "sent_at",
    )
    ordering = ("-created_at", "-id")


@admin.register(Ticket)
class TicketAdmin(ReadOnlyModelAdmin):
    list_display = (
        "code",
        "service",
        "day",
        "status",
        "desk",
        "paid_at",
        "printed_at",
        "called_at",
    )
    list_filter = ("status", "service", "day")
    ordering = ("-created_at", "-id")
    search_fields = ("payment_session__reference", "customer_name")
    readonly_fields = [f.name for f in Ticket._meta.fields]
    inlines = [PrintJobInline, TicketEventInline]
    actions = ["reprint"]

    def has_add_permission(self, request):
        return False

    def has_delete_permission(self, request, obj=None):
        return False

    @admin.action(description=_("Reprint the selected tickets"), permissions=["change"])
    def reprint(self, request, queryset):
        """Any ticket not finished, with a reason kept on its `reprint` event."""

        def apply(ticket, data):
            ticket_reprint_request(ticket_id=ticket.pk, actor=request.user, reason=data["reason"])

        return confirm_with_form(
            self,
            request,
            queryset,
            title=_("Reprint the selected tickets"),
            form_class=ReasonForm,
            apply=apply,
            success=ngettext_lazy(
                "%(count)d ticket sent to the printer again: %(objects)s.",
                "%(count)d tickets sent to the printer again: %(objects)s.",
                "count",
            ),
        )


@admin.register(Printer)
class PrinterAdmin(admin.ModelAdmin):
    list_display = ("name", "location", "url", "enabled", "last_success_at", "last_error_at")
    readonly_fields = ("last_success_at", "last_error", "last_error_at")


@admin.register(PrintJob)
class PrintJobAdmin(ReadOnlyModelAdmin):
    list_display = (
        "id",
        "ticket",
        "printer",
        "status",
        "attempts",
        "reprint_marked",
        "created_at",
        "sent_at",
    )
    list_filter = ("status", "reprint_marked", "printer")
    ordering = ("-created_at", "-id")
    exclude = ("data",)
    readonly_fields = (
        "ticket",
        "printer",
        "status",
        "attempts",
        "reprint_marked",
        "last_error",
        "requested_by",
        "created_at",
        "sent_at",
    )

    def has_add_permission(self, request):
        return False


@admin.register(DeskAssignment)
class DeskAssignmentAdmin(AppendOnlyAdmin):
    list_display = ("created_at", "operator", "desk", "previous_desk")
    list_filter = ("desk",)
    search_fields = ("operator__username", "desk")
    ordering = ("-created_at", "-id")


@admin.register(Kiosk)
class KioskAdmin(admin.ModelAdmin):
    list_display = ("name", "location", "printer", "active")
    exclude = ("token_hash",)
    actions = ["new_token"]

    @admin.action(description=_("Issue a new kiosk token (shown once)"), permissions=["change"])
    def new_token(self, request, queryset):
        for kiosk in queryset:
            token = kiosk_token_rotate(kiosk=kiosk)
            self.message_user(request, f"{kiosk.name}: /kiosk/?token={token}", messages.WARNING)
