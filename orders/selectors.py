from datetime import timedelta

from django.db.models import Prefetch
from django.utils import timezone

from orders.models import Order, OrderStatus, PaymentProof, Product, ProofStatus, Table

PAID_SHOWN_FOR = timedelta(hours=12)


def _with_lines(queryset):
    return queryset.select_related("table", "waiter").prefetch_related("lines__product")


def orders_awaiting_verification() -> list[Order]:
    """Each with `open_proof` (the submitted proof under review) and `rejected_proofs`
    (the earlier attempts a cashier refused, oldest first, with their reasons)."""
    orders = _with_lines(
        Order.objects.filter(status=OrderStatus.AWAITING_VERIFICATION).order_by("updated_at")
    ).prefetch_related(
        Prefetch(
            "proofs",
            queryset=PaymentProof.objects.filter(status=ProofStatus.SUBMITTED),
            to_attr="open_proofs",
        ),
        Prefetch(
            "proofs",
            queryset=PaymentProof.objects.filter(status=ProofStatus.REJECTED).order_by("attempt"),
            to_attr="rejected_proofs",
        ),
    )
    result = list(orders)
    for order in result:
        order.open_proof = order.open_proofs[0] if order.open_proofs else None
    return result


def orders_awaiting_count() -> int:
    return Order.objects.filter(status=OrderStatus.AWAITING_VERIFICATION).count()


def orders_for_waiter(waiter) -> dict[str, list[Order]]:
    """The waiter's own orders by what they wait for: the kitchen, serving, collecting,
    the cashier; and those paid in the last PAID_SHOWN_FOR, so an approval shows."""
    mine = _with_lines(Order.objects.filter(waiter=waiter).order_by("-updated_at"))
    paid_since = timezone.now() - PAID_SHOWN_FOR
    delivered = list(mine.filter(status=OrderStatus.DELIVERED))
    for order in delivered:
        order.last_rejection = (
            order.proofs.filter(status=ProofStatus.REJECTED).order_by("-attempt").first()
        )
    return {
        "in_kitchen": list(
            mine.filter(status__in=(OrderStatus.PENDING, OrderStatus.PREPARING)).order_by(
                "created_at"
            )
        ),
        "paid": list(mine.filter(status=OrderStatus.PAID, updated_at__gte=paid_since)[:20]),
        "ready": list(mine.filter(status=OrderStatus.READY)),
        "to_collect": delivered,
        "awaiting": list(mine.filter(status=OrderStatus.AWAITING_VERIFICATION)),
    }


def orders_for_kitchen() -> list[Order]:
    return list(
        _with_lines(
            Order.objects.filter(status__in=(OrderStatus.PENDING, OrderStatus.PREPARING)).order_by(
                "created_at"
            )
        )
    )


def order_entry_choices() -> dict[str, list]:
    """What a waiter may put on a new order: the active tables and menu items."""
    return {
        "tables": list(Table.objects.filter(active=True)),
        "products": list(Product.objects.filter(active=True)),
    }


def proof_get(*, proof_id: int) -> PaymentProof | None:
    """A payment proof with its order; the caller checks who may see it."""
    return PaymentProof.objects.select_related("order").filter(pk=proof_id).first()
