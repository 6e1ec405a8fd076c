"""What people read for event types and audiences: pages show these labels, never the
codes (`payment.confirmed`, `user:7`), which stay in frames, JSON and `data-*` attributes."""

from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

EVENT_TYPE_LABELS = {
    "payment.processing": _("Payment being processed"),
    "payment.confirmed": _("Payment confirmed"),
    "payment.review": _("Payment held for review"),
    "payment.partially_paid": _("Part of the payment arrived"),
    "payment.refunded": _("Payment refunded"),
    "payment.failed": _("Payment failed"),
    "payment.cancelled": _("Payment cancelled"),
    "payment.expired": _("Payment expired"),
    "payment.verification_pending": _("Payment proof to verify"),
    "payment.rejected": _("Payment proof rejected"),
    "order.updated": _("Order updated"),
    "subscription.activated": _("Subscription activated"),
    "subscription.payment_held": _("Subscription payment held"),
    "subscription.deactivated": _("Subscription deactivated"),
    "subscription.expired": _("Subscription expired"),
    "machine_session.activated": _("Machine time started"),
    "machine_session.extended": _("Machine time extended"),
    "machine_session.completed": _("Machine time ended"),
    "machine.activate": _("Machine switched on"),
    "machine.deactivate": _("Machine switched off"),
    "ticket.created": _("Ticket created"),
    "ticket.printed": _("Ticket printed"),
    "ticket.print_error": _("Ticket printing failed"),
    "ticket.called": _("Ticket called"),
    "ticket.started": _("Service started"),
    "ticket.completed": _("Service completed"),
    "ticket.no_show": _("Customer did not come"),
    "ticket.cancelled": _("Ticket cancelled"),
    "ticket.print_interrupted": _("Printing interrupted"),
    "alert.raised": _("Alert"),
}

# What each alert code means, for the staff alert bar and the alert pages. A code not
# listed reads as "Alert", never as itself.
ALERT_LABELS = {
    "payment.amount_mismatch": _("Payment amount or currency does not match"),
    "payment.late": _("Payment arrived after its session closed"),
    "payment.delayed": _("Crypto payment arrived after the charge expired"),
    "payment.partially_paid": _("Crypto payment arrived short of the price"),
    "payment.duplicate": _("Second payment for one session"),
    "payment.refund_due": _("Payment to refund"),
    "payment.fulfilment_failed": _("Paid but not delivered"),
    "payment.refund": _("Payment refunded"),
    "payment.chargeback": _("Payment charged back"),
    "payment.refund_unexpected": _("Refund for a payment that is not completed"),
    "payment.chargeback_unexpected": _("Chargeback for a payment that is not completed"),
    "payment.refund_other_payment": _("Refund for a second payment"),
    "payment.chargeback_other_payment": _("Chargeback for a second payment"),
    "payment.unmatched": _("Payment that matches no session"),
    "webhook.dead": _("Provider notification given up"),
    "webhook.backlog": _("Provider notifications waiting too long"),
    "monitor.gap": _("Paid but not active"),
    "monitor.repair_failed": _("Automatic repair failed"),
    "wallet.topup_reversal_short": _("Refunded top-up already spent"),
    "ticket.print_error": _("Ticket printing failed"),
    "task.orphaned": _("Background task lost"),
    "alerts.test": _("Test alert"),
}

ROLE_LABELS = {
    "cashier": _("Cashiers"),
    "waiter": _("Waiters"),
    "kitchen": _("Kitchen"),
    "operator": _("Operators"),
    "staff": _("Staff"),
}


def event_type_label(event_type: str) -> str:
    """The translated label of an event type; one not in the list (a new type not labelled
    yet) reads as "Event" rather than as its code."""
    label = EVENT_TYPE_LABELS.get(event_type)
    return str(label) if label is not None else gettext("Event")


def alert_label(code: str) -> str:
    """The translated label of an alert code; an unknown one reads as "Alert"."""
    label = ALERT_LABELS.get(code)
    return str(label) if label is not None else gettext("Alert")


def alert_labels() -> dict[str, str]:
    """Every alert code's label in the active language (for the live alert bar)."""
    return {code: str(label) for code, label in ALERT_LABELS.items()}


def audience_label(audience: str) -> str:
    """Who an event was addressed to, in words: "user:7" → "Customer #7", "role:operator"
    → "Operators", "display:hall" → "Display hall"."""
    kind, _sep, value = audience.partition(":")
    if kind == "user":
        return gettext("Customer #%(id)s") % {"id": value}
    if kind == "role":
        label = ROLE_LABELS.get(value)
        return str(label) if label is not None else gettext("Team %(name)s") % {"name": value}
    if kind == "display":
        return gettext("Display %(name)s") % {"name": value}
    if kind == "payment":
        return gettext("Payment %(reference)s") % {"reference": value}
    if kind == "machine":
        return gettext("Machine #%(id)s") % {"id": value}
    return gettext("Other")
