"""Staff pages for money that needs a person: partial payments (accept or record their
refund) and unmatched money (attach it to a session). Read-only lists; every decision is
an action that asks for a reason and goes through the payments services."""

from django import forms
from django.contrib import admin
from django.utils.html import format_html, format_html_join
from django.utils.translation import gettext_lazy as _
from django.utils.translation import ngettext_lazy

from core.admin_tools import ReadOnlyInline, ReadOnlyModelAdmin, ReasonForm, confirm_with_form
from payments.models import AuditSource, PartialPayment, UnmatchedPayment
from payments.services.confirmation import Evidence
from payments.services.partial import partial_payment_accept, partial_payment_refund
from payments.services.unmatched import unmatched_attach


def _staff_evidence(request, data) -> Evidence:
    return Evidence(source=AuditSource.STAFF, actor=request.user, reason=data["reason"])


def _session_reference(partial) -> str:
    return partial.session.reference


class ReadOnlyListAdmin(ReadOnlyModelAdmin):
    """Rows written by the webhook workers: shown (newest first), changed only by actions."""

    ordering = ("-received_at", "-id")

    def get_readonly_fields(self, request, obj=None):
        return [f.name for f in self.model._meta.fields] + list(self.extra_readonly)

    extra_readonly: tuple = ()

    def has_add_permission(self, request):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


class PartialPaymentInline(ReadOnlyInline):
    """On a payment session's page: part of its price arrived (decide in Partial payments)."""

    model = PartialPayment
    fields = ("status", "received", "missing", "pay_currency", "received_at", "reason")

    @admin.display(description=_("received / due"))
    def received(self, obj):
        return f"{obj.paid_text} / {obj.due_text}"

    @admin.display(description=_("missing"))
    def missing(self, obj):
        return obj.missing_text


class UnmatchedPaymentInline(ReadOnlyInline):
    """On a payment session's page: unmatched money staff attached to it."""

    model = UnmatchedPayment
    fk_name = "session"
    fields = ("provider_payment_id", "amount", "currency", "attached_at", "attached_by", "reason")


@admin.register(PartialPayment)
class PartialPaymentAdmin(ReadOnlyListAdmin):
    list_display = (
        "session",
        "status",
        "session_status",
        "received",
        "missing",
        "pay_currency",
        "received_at",
        "resolved_by",
    )
    list_filter = ("status", "pay_currency")
    search_fields = ("session__reference", "provider_payment_id", "pay_address")
    date_hierarchy = "received_at"
    list_select_related = ("session", "resolved_by")
    actions = ["accept", "record_refund"]

    @admin.display(description=_("payment status"))
    def session_status(self, obj):
        return obj.session.get_status_display()

    @admin.display(description=_("received / due"))
    def received(self, obj):
        return f"{obj.paid_text} / {obj.due_text}"

    @admin.display(description=_("missing"))
    def missing(self, obj):
        return obj.missing_text

    @admin.action(
        description=_("Accept what arrived and confirm the payment"), permissions=["change"]
    )
    def accept(self, request, queryset):
        return confirm_with_form(
            self,
            request,
            queryset,
            title=_("Accept what arrived and confirm the payment"),
            form_class=ReasonForm,
            apply=lambda partial, data: partial_payment_accept(
                reference=partial.session.reference, evidence=_staff_evidence(request, data)
            ),
            success=ngettext_lazy(
                "%(count)d partial payment accepted, its payment confirmed: %(objects)s.",
                "%(count)d partial payments accepted, their payments confirmed: %(objects)s.",
                "count",
            ),
            name=_session_reference,
        )

    @admin.action(
        description=_("Record that what arrived was refunded (cancels the payment)"),
        permissions=["change"],
    )
    def record_refund(self, request, queryset):
        return confirm_with_form(
            self,
            request,
            queryset,
            title=_("Record that what arrived was refunded (cancels the payment)"),
            form_class=ReasonForm,
            apply=lambda partial, data: partial_payment_refund(
                reference=partial.session.reference, evidence=_staff_evidence(request, data)
            ),
            success=ngettext_lazy(
                "Refund recorded for %(count)d partial payment, its payment cancelled: "
                "%(objects)s.",
                "Refund recorded for %(count)d partial payments, their payments cancelled: "
                "%(objects)s.",
                "count",
            ),
            name=_session_reference,
        )


class AttachForm(ReasonForm):
    reference = forms.CharField(
        label=_("Payment session reference"),
        max_length=64,
        help_text=_("The reference (ps_…) of the session this money paid for."),
    )
    field_order = ["reference", "reason"]


@admin.register(UnmatchedPayment)
class UnmatchedPaymentAdmin(ReadOnlyListAdmin):
    list_display = (
        "received_at",
        "provider",
        "provider_payment_id",
        "amount",
        "currency",
        "provider_status",
        "payer_summary",
        "session",
    )
    list_filter = ("provider", "provider_status", ("session", admin.EmptyFieldListFilter))
    search_fields = ("provider_payment_id", "external_reference", "session__reference")
    date_hierarchy = "received_at"
    list_select_related = ("session",)
    exclude = ("payer",)
    extra_readonly = ("payer_details",)
    actions = ["attach"]

    @admin.display(description=_("payer"))
    def payer_summary(self, obj):
        payer = obj.payer or {}
        return " · ".join(str(payer[k]) for k in ("name", "email", "document") if payer.get(k))

    @admin.display(description=_("payer"))
    def payer_details(self, obj):
        rows = sorted((obj.payer or {}).items())
        if not rows:
            return "-"
        return format_html("<dl>{}</dl>", format_html_join("", "<dt>{}</dt><dd>{}</dd>", rows))

    @admin.action(
        description=_("Attach to a payment session (confirms it)"), permissions=["change"]
    )
    def attach(self, request, queryset):
        return confirm_with_form(
            self,
            request,
            queryset,
            title=_("Attach to a payment session (confirms it)"),
            form_class=AttachForm,
            apply=lambda row, data: unmatched_attach(
                unmatched_id=row.pk,
                reference=data["reference"],
                evidence=_staff_evidence(request, data),
            ),
            success=ngettext_lazy(
                "%(count)d unmatched payment attached to its payment session: %(objects)s.",
                "%(count)d unmatched payments attached to their payment session: %(objects)s.",
                "count",
            ),
            name=lambda row: row.provider_payment_id,
        )
