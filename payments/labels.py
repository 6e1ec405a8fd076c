"""What people read for the codes payments store: providers, webhook delivery statuses,
the kinds of paid-but-not-delivered gaps. Purposes have theirs on each Purpose
(`payments.registry.purpose_label`)."""

from django.utils.translation import gettext_lazy as _

from payments.models import DeliveryStatus, Provider

GAP_KIND_LABELS = {
    "unfulfilled": _("not delivered"),
    "partially_paid": _("partly paid"),
    "amount_mismatch": _("amount mismatch"),
    "late_payment": _("late payment"),
    "refund_due": _("refund due"),
}


def _choice_label(choices, code: str) -> str:
    label = dict(choices).get(code)
    return str(label) if label is not None else code


def provider_label(code: str) -> str:
    return _choice_label(Provider.choices, code)


def delivery_status_label(code: str) -> str:
    return _choice_label(DeliveryStatus.choices, code)


def gap_kind_label(code: str) -> str:
    return _choice_label(GAP_KIND_LABELS.items(), code)
