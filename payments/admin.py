"""The staff console for payments. Every action goes through the same services as the
automatic path, with the staff user as actor and a required reason."""

from decimal import Decimal

from django import forms
from django.contrib import admin, messages
from django.db.models import Q
from django.utils.html import format_html
from django.utils.translation import gettext_lazy as _
from django.utils.translation import ngettext_lazy

from core.admin_tools import (
    ReadOnlyInline,
    ReadOnlyModelAdmin,
    ReasonForm,
    ResolveForm,
    StatusAuditAdmin,
    confirm_with_form,
)
from payments.admin_held import PartialPaymentInline, UnmatchedPaymentInline
from payments.errors import PaymentError
from payments.labels import provider_label
from payments.models import (
    AuditSource,
    Coupon,
    CouponRedemption,
    DeliveryStatus,
    LedgerEntry,
    PaymentAudit,
    PaymentSession,
    PaymentStatus,
    WalletAccount,
    WebhookDelivery,
    WebhookRefusal,
)
from payments.registry import purpose_label
from payments.services import (
    payment_cancel,
    payment_confirm,
    payment_fulfil,
    payment_refund,
)
from payments.services.confirmation import Evidence
from payments.services.deliveries import SETTLED, delivery_replay
from payments.services.retention import delivery_resolve


def _reference(session) -> str:
    return session.reference


def with_reason(description, success):
    """An admin action that first asks for a reason, then calls `func(obj, evidence)` with
    the staff user as actor; `success` says what was done (see confirm_with_form)."""

    def decorator(func):
        def action(modeladmin, request, queryset):
            def apply(obj, data):
                func(
                    obj,
                    Evidence(source=AuditSource.STAFF, actor=request.user, reason=data["reason"]),
                )

            return confirm_with_form(
                modeladmin,
                request,
                queryset,
                title=description,
                form_class=ReasonForm,
                apply=apply,
                success=success,
                name=_reference,
            )

        action.__name__ = func.__name__
        return admin.action(description=description, permissions=["change"])(action)

    return decorator


class RefundForm(ReasonForm):
    amount = forms.DecimalField(
        label=_("Amount refunded"),
        required=False,
        min_value=Decimal("0.01"),
        max_digits=14,
        decimal_places=2,
        help_text=_(
            "Leave empty for the whole payment. For a payment made at a provider, this records "
            "a refund already made there. For a payment made from credit, the credit goes back "
            "to the customer's wallet, always in full."
        ),
    )


class PaymentAuditInline(ReadOnlyInline):
    model = PaymentAudit
    fields = (
        "created_at",
        "action",
        "from_status",
        "to_status",
        "source",
        "actor",
        "reason",
        "delivery",
        "data",
    )
    ordering = ("-created_at", "-id")


@admin.register(PaymentSession)
class PaymentSessionAdmin(ReadOnlyModelAdmin):
    ordering = ("-created_at", "-id")
    list_display = (
        "reference",
        "purpose_name",
        "provider",
        "status",
        "amount",
        "currency",
        "user",
        "created_at",
        "completed_at",
        "fulfilled_at",
        "flags",
    )
    list_filter = (
        "status",
        "purpose",
        "provider",
        "amount_mismatch",
        "late_payment",
        "refund_due",
        ("fulfilled_at", admin.EmptyFieldListFilter),
    )
    search_fields = (
        "reference",
        "provider_payment_id",
        "idempotency_key",
        "user__username",
        "user__email",
    )
    date_hierarchy = "created_at"
    inlines = [PaymentAuditInline, PartialPaymentInline, UnmatchedPaymentInline]
    readonly_fields = [f.name for f in PaymentSession._meta.fields]
    actions = [
        "confirm_manually",
        "rerun_fulfilment",
        "accept_and_fulfil",
        "cancel",
        "record_refund",
    ]

    def has_add_permission(self, request):
        return False

    def has_delete_permission(self, request, obj=None):
        return False

    @admin.display(description=_("purpose"), ordering="purpose")
    def purpose_name(self, obj):
        return purpose_label(obj.purpose)

    @admin.display(description=_("flags"))
    def flags(self, obj):
        names = []
        if obj.amount_mismatch:
            names.append(_("amount mismatch"))
        if obj.late_payment:
            names.append(_("late"))
        if obj.refund_due:
            names.append(_("refund due"))
        if obj.fulfilment_error:
            names.append(_("fulfilment error"))
        return ", ".join(str(n) for n in names)

    @with_reason(
        _("Confirm payment manually (money verified elsewhere)"),
        ngettext_lazy(
            "%(count)d payment confirmed: %(objects)s.",
            "%(count)d payments confirmed: %(objects)s.",
            "count",
        ),
    )
    def confirm_manually(session, evidence):
        payment_confirm(reference=session.reference, evidence=evidence)

    @with_reason(
        _("Re-run fulfilment"),
        ngettext_lazy(
            "Fulfilment re-run for %(count)d payment: %(objects)s.",
            "Fulfilment re-run for %(count)d payments: %(objects)s.",
            "count",
        ),
    )
    def rerun_fulfilment(session, evidence):
        payment_fulfil(reference=session.reference, evidence=evidence)

    @with_reason(
        _("Accept review (late or mismatched) and fulfil"),
        ngettext_lazy(
            "%(count)d payment accepted and fulfilled: %(objects)s.",
            "%(count)d payments accepted and fulfilled: %(objects)s.",
            "count",
        ),
    )
    def accept_and_fulfil(session, evidence):
        payment_fulfil(reference=session.reference, evidence=evidence, accept_review=True)

    @with_reason(
        _("Cancel open session"),
        ngettext_lazy(
            "%(count)d payment cancelled: %(objects)s.",
            "%(count)d payments cancelled: %(objects)s.",
            "count",
        ),
    )
    def cancel(session, evidence):
        payment_cancel(reference=session.reference, evidence=evidence)

    @admin.action(description=_("Record a refund"), permissions=["change"])
    def record_refund(self, request, queryset):
        def apply(session, data):
            payment_refund(
                reference=session.reference,
                evidence=Evidence(
                    source=AuditSource.STAFF, actor=request.user, reason=data["reason"]
                ),
                amount=data.get("amount"),
            )

        return confirm_with_form(
            self,
            request,
            queryset,
            title=_("Record a refund"),
            form_class=RefundForm,
            apply=apply,
            success=ngettext_lazy(
                "Refund recorded for %(count)d payment: %(objects)s.",
                "Refund recorded for %(count)d payments: %(objects)s.",
                "count",
            ),
            name=_reference,
        )


@admin.register(PaymentAudit)
class PaymentAuditAdmin(StatusAuditAdmin):
    status_choices = PaymentStatus
    list_display = (
        "created_at",
        "session",
        "action",
        "status_before",
        "status_after",
        "source",
        "actor",
    )
    list_filter = ("action", "source")
    search_fields = ("session__reference", "reason")
    ordering = ("-created_at", "-id")


class ReferenceSearchFilter(admin.SimpleListFilter):
    title = _("signature")
    parameter_name = "signature"

    def lookups(self, request, model_admin):
        return [("valid", _("valid")), ("invalid", _("invalid")), ("unchecked", _("unchecked"))]

    def queryset(self, request, queryset):
        value = {"valid": True, "invalid": False, "unchecked": None}.get(self.value(), "all")
        if value == "all":
            return queryset
        return (
            queryset.filter(signature_valid__isnull=True)
            if value is None
            else (queryset.filter(signature_valid=value))
        )


@admin.register(WebhookDelivery)
class WebhookDeliveryAdmin(ReadOnlyModelAdmin):
    list_display = (
        "id",
        "provider",
        "received_at",
        "status",
        "response_status",
        "signature_valid",
        "event_id",
        "session",
        "attempts",
        "replay_of",
    )
    list_filter = ("provider", "status", ReferenceSearchFilter, "received_at")
    search_fields = (
        "event_id",
        "session__reference",
        "session__provider_payment_id",
        "query_string",
    )
    date_hierarchy = "received_at"
    ordering = ("-received_at", "-id")
    exclude = ("body",)
    readonly_fields = (
        "provider",
        "endpoint",
        "received_at",
        "remote_addr",
        "headers",
        "query_string",
        "raw_body",
        "body_size",
        "signature_valid",
        "event_id",
        "status",
        "response_status",
        "error",
        "traceback",
        "attempts",
        "next_attempt_at",
        "processed_at",
        "resolved_at",
        "resolved_by",
        "notes",
        "session",
        "replay_of",
        "requested_by",
        "claimed_by",
    )
    actions = ["replay", "mark_resolved"]

    def get_search_results(self, request, queryset, search_term):
        queryset, duplicates = super().get_search_results(request, queryset, search_term)
        if search_term:
            # The reference or payment id inside the body (providers put it there).
            queryset |= self.model.objects.filter(Q(query_string__contains=search_term))
        return queryset, duplicates

    @admin.display(description=_("raw body"))
    def raw_body(self, obj):
        return format_html("<pre style='white-space:pre-wrap'>{}</pre>", obj.body_text)

    def has_add_permission(self, request):
        return False

    def has_delete_permission(self, request, obj=None):
        return False

    @admin.action(description=_("Replay the selected deliveries"), permissions=["change"])
    def replay(self, request, queryset):
        for delivery in queryset.order_by("id"):
            try:
                result = delivery_replay(delivery_id=delivery.pk, user=request.user)
            except PaymentError as exc:
                self.message_user(
                    request,
                    _("Delivery %(id)s was not replayed: %(why)s")
                    % {"id": delivery.pk, "why": exc},
                    messages.ERROR,
                )
                continue
            level = messages.SUCCESS if result.status in SETTLED else messages.WARNING
            self.message_user(
                request,
                _(
                    "Delivery %(id)s was replayed as delivery %(new)s: %(status)s. "
                    "The original keeps its outcome."
                )
                % {
                    "id": delivery.pk,
                    "new": result.delivery_id,
                    "status": DeliveryStatus(result.status).label,
                },
                level,
            )

    @admin.action(
        description=_("Mark dead deliveries resolved (dealt with)"), permissions=["change"]
    )
    def mark_resolved(self, request, queryset):
        def apply(delivery, data):
            delivery_resolve(delivery_id=delivery.pk, user=request.user, notes=data["notes"])

        return confirm_with_form(
            self,
            request,
            # Only dead deliveries not yet resolved (none of them: "Nothing was changed.").
            queryset.filter(status=DeliveryStatus.DEAD, resolved_at__isnull=True).order_by("id"),
            title=_("Mark dead deliveries resolved (dealt with)"),
            form_class=ResolveForm,
            apply=apply,
            success=ngettext_lazy(
                "%(count)d dead delivery resolved.", "%(count)d dead deliveries resolved.", "count"
            ),
            name=lambda delivery: f"#{delivery.pk}",
        )


@admin.register(WebhookRefusal)
class WebhookRefusalAdmin(ReadOnlyModelAdmin):
    """Requests refused at the webhook URLs, counted per provider, reason, address and
    hour (read-only: what arrived, not something to fix here)."""

    list_display = (
        "window_start",
        "provider_name",
        "reason",
        "response_status",
        "remote_addr",
        "count",
        "last_at",
    )
    list_filter = ("provider", "reason", "window_start")
    search_fields = ("remote_addr", "body_sha256", "detail")
    date_hierarchy = "window_start"
    ordering = ("-window_start", "-last_at")
    exclude = ("body_head",)
    readonly_fields = (
        "provider",
        "endpoint",
        "reason",
        "response_status",
        "remote_addr",
        "window_start",
        "first_at",
        "last_at",
        "count",
        "body_size",
        "body_sha256",
        "sample",
        "headers_head",
        "detail",
    )

    @admin.display(description=_("provider"), ordering="provider")
    def provider_name(self, obj):
        return provider_label(obj.provider)

    @admin.display(description=_("first bytes of the body"))
    def sample(self, obj):
        text = bytes(obj.body_head).decode("utf-8", errors="replace")
        return format_html("<pre style='white-space:pre-wrap'>{}</pre>", text)

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


@admin.register(Coupon)
class CouponAdmin(admin.ModelAdmin):
    list_display = (
        "code",
        "kind",
        "value",
        "currency",
        "active",
        "valid_from",
        "valid_until",
        "used_count",
        "max_uses",
    )
    list_filter = ("active", "kind")
    search_fields = ("code",)
    readonly_fields = ("used_count",)


@admin.register(CouponRedemption)
class CouponRedemptionAdmin(ReadOnlyModelAdmin):
    list_display = ("coupon", "session", "created_at")
    readonly_fields = ("coupon", "session", "created_at")
    ordering = ("-created_at", "-id")

    def has_add_permission(self, request):
        return False


class LedgerInline(ReadOnlyInline):
    model = LedgerEntry
    fields = ("created_at", "kind", "amount", "balance_after", "session", "reason", "actor")
    ordering = ("-created_at", "-id")


@admin.register(WalletAccount)
class WalletAccountAdmin(ReadOnlyModelAdmin):
    list_display = ("user", "balance", "currency", "updated_at")
    search_fields = ("user__username", "user__email")
    readonly_fields = ("user", "balance", "currency")
    inlines = [LedgerInline]

    def has_add_permission(self, request):
        return False
