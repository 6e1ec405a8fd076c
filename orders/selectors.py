from django.db.models import Prefetch

from orders.models import Order, OrderStatus, PaymentProof, ProofStatus


def _with_lines(queryset):
    return queryset.select_related("table", "waiter").prefetch_related("lines__product")


def orders_awaiting_verification() -> list[Order]:
    """Each with `open_proof` (the submitted proof under review)."""
    orders = _with_lines(
        Order.objects.filter(status=OrderStatus.AWAITING_VERIFICATION).order_by("updated_at")
    ).prefetch_related(
        Prefetch(
            "proofs",
            queryset=PaymentProof.objects.filter(status=ProofStatus.SUBMITTED),
            to_attr="open_proofs",
        )
    )
    result = list(orders)
    for order in result:
        order.open_proof = order.open_proofs[0] if order.open_proofs else None
    return result


def orders_awaiting_count() -> int:
    return Order.objects.filter(status=OrderStatus.AWAITING_VERIFICATION).count()


def orders_for_waiter(waiter) -> dict[str, list[Order]]:
    mine = _with_lines(Order.objects.filter(waiter=waiter).order_by("-updated_at"))
    delivered = list(mine.filter(status=OrderStatus.DELIVERED))
    for order in delivered:
        order.last_rejection = (
            order.proofs.filter(status=ProofStatus.REJECTED).order_by("-attempt").first()
        )
    return {
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
