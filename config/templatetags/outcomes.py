"""How a payment's page tells its outcome: what happened, why, and what to do next.

`{% payment_outcome session as outcome %}` gives the tone (success, waiting, warning,
failure), the reason the session's own trail carries for a failed, expired or cancelled
payment, the page where the customer can try again, and — for a confirmed top-up — the
wallet balance it led to. Reads only."""

from dataclasses import dataclass
from decimal import Decimal

from django import template
from django.urls import NoReverseMatch, reverse
from django.utils.translation import gettext as _

from payments.models import AuditSource, PaymentAudit, PaymentSession, PaymentStatus
from subscriptions.models import UsageSession

register = template.Library()

TONES = {
    PaymentStatus.COMPLETED: "success",
    PaymentStatus.PENDING: "waiting",
    PaymentStatus.PROCESSING: "waiting",
    PaymentStatus.REFUNDED: "warning",
    PaymentStatus.EXPIRED: "warning",
    PaymentStatus.FAILED: "failure",
    PaymentStatus.CANCELLED: "failure",
}


@dataclass(frozen=True)
class Outcome:
    tone: str
    reason: str = ""
    retry_url: str = ""
    credited: Decimal | None = None
    balance: Decimal | None = None
    balance_currency: str = ""


def _closing_audit(session: PaymentSession) -> PaymentAudit | None:
    return (
        PaymentAudit.objects.filter(session=session, to_status=session.status)
        .order_by("-id")
        .first()
    )


def _reason(session: PaymentSession) -> str:
    """Why the session ended unpaid, from the audit row that closed it."""
    audit = _closing_audit(session)
    source = audit.source if audit else ""
    from_provider = source in (AuditSource.WEBHOOK, AuditSource.POLL)
    provider_status = str((audit.data or {}).get("provider_status") or "")[:40] if audit else ""
    if session.status == PaymentStatus.EXPIRED:
        if from_provider:
            return _("The payment provider reports that the payment expired before it was paid.")
        return _("The payment was not made before its time ran out.")
    if session.status == PaymentStatus.FAILED:
        if provider_status and provider_status.lower() not in ("rejected", "failed", "error"):
            return _("The payment provider rejected the payment (its status: %(status)s).") % {
                "status": provider_status
            }
        return _("The payment provider rejected the payment.")
    if session.status == PaymentStatus.CANCELLED:
        if source == AuditSource.CUSTOMER:
            return _("You cancelled this payment.")
        if source == AuditSource.STAFF:
            return _("Our staff cancelled this payment: %(reason)s") % {"reason": audit.reason}
        if from_provider:
            return _("The payment was cancelled at the payment provider.")
        return _("This payment was cancelled before it was paid.")
    return ""


def _retry_url(session: PaymentSession) -> str:
    """The page where this kind of payment starts, to try again."""
    try:
        if session.purpose == "wallet_topup":
            return reverse("payments") + "#wallet"
        if session.purpose == "subscription":
            return reverse("billing")
        if session.purpose == "machine_session":
            usage_id = (session.params or {}).get("usage_session")
            usage = UsageSession.objects.select_related("machine").filter(pk=usage_id).first()
            return reverse("machine", args=[usage.machine.code]) if usage else reverse("machines")
    except NoReverseMatch:
        return ""
    return ""


@register.simple_tag
def payment_outcome(session: PaymentSession) -> Outcome:
    tone = TONES.get(session.status, "waiting")
    if session.status == PaymentStatus.COMPLETED and (
        session.amount_mismatch or session.late_payment or session.refund_due
    ):
        tone = "warning"
    closed_unpaid = session.status in (
        PaymentStatus.FAILED,
        PaymentStatus.EXPIRED,
        PaymentStatus.CANCELLED,
    )
    credited = balance = None
    currency = ""
    if session.status == PaymentStatus.COMPLETED and session.purpose == "wallet_topup":
        entry = session.ledger.select_related("account").order_by("id").first()
        if entry is not None:
            credited, balance = entry.amount, entry.account.balance
            currency = entry.account.currency
    return Outcome(
        tone=tone,
        reason=_reason(session) if closed_unpaid else "",
        retry_url=_retry_url(session) if closed_unpaid else "",
        credited=credited,
        balance=balance,
        balance_currency=currency,
    )
