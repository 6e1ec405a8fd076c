"""Orders: kitchen and waiter steps, payment proofs, cashier verification.

Every change publishes its events inside the transaction (they leave after commit) and
writes the order's audit row (OrderEvent) in it; a resubmitted proof is announced exactly
like a first one, marked `resubmitted`.
Verification goes through the payments core: the proof's session is confirmed by
`payment_confirm` (source: cashier), and the `order` purpose marks the order paid.
"""

import logging
import uuid
from collections.abc import Iterable
from decimal import Decimal, InvalidOperation

from django.conf import settings
from django.core.files.base import ContentFile
from django.core.files.storage import FileSystemStorage
from django.db import IntegrityError, transaction
from django.db.models import Exists, OuterRef
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from core.errors import NotFound, PermissionDenied
from core.roles import has_role, user_roles
from notifications.audiences import audience_role, audience_user
from notifications.services import event_publish
from orders.errors import OrderError
from orders.models import (
    ORDER_TRANSITIONS,
    Order,
    OrderEvent,
    OrderLine,
    OrderStatus,
    PaymentMethod,
    PaymentProof,
    Product,
    ProofStatus,
    Table,
)
from orders.uploads import proof_file_clean
from payments.errors import FulfilmentRefused, InvalidParams
from payments.models import AuditSource, PaymentSession, Provider
from payments.registry import Purpose, Quote
from payments.services import payment_confirm, payment_fail, payment_session_create
from payments.services.confirmation import Evidence, fulfilment_evidence

logger = logging.getLogger(__name__)

STAFF_AUDIENCES = [audience_role("cashier"), audience_role("waiter"), audience_role("kitchen")]


def proof_storage() -> FileSystemStorage:
    return FileSystemStorage(location=settings.PRIVATE_MEDIA_ROOT)


def _lock(order_id: int) -> Order:
    try:
        return (
            Order.objects.select_for_update(of=("self",)).select_related("table").get(pk=order_id)
        )
    except Order.DoesNotExist:
        raise NotFound(_("No such order.")) from None


def _move(
    order: Order,
    to: str,
    *,
    source: AuditSource,
    actor=None,
    action: str = "",
    reason: str = "",
    **data,
) -> None:
    """Move a locked order to `to` (checked against ORDER_TRANSITIONS), save it and write
    its audit row: `action` (the new status unless named), who or what acted, why."""
    before = order.status
    if to not in ORDER_TRANSITIONS[before]:
        raise OrderError(
            _("An order that is %(status)s cannot become %(to)s.")
            % {"status": order.get_status_display(), "to": OrderStatus(to).label},
            code="invalid_transition",
        )
    order.status = to
    order.save(update_fields=["status", "payment_method", "rejections", "updated_at"])
    OrderEvent.objects.create(
        order=order,
        action=action or to,
        from_status=before,
        to_status=to,
        source=source,
        actor=actor,
        reason=reason,
        data=data,
    )
    logger.info("order %s -> %s by %s", order.pk, to, source)


def order_payload(order: Order) -> dict:
    return {
        "order": order.pk,
        "status": order.status,
        "table": order.table.name,
        "total": str(order.total),
        "currency": order.currency,
        "method": order.payment_method,
        "at": timezone.now(),
    }


def _updated(order: Order) -> None:
    event_publish(audience=STAFF_AUDIENCES, type="order.updated", payload=order_payload(order))


# --- Taking an order ---------------------------------------------------------------------------

ORDER_MAX_QUANTITY = 50
ORDER_MAX_AMOUNT = Decimal("100000.00")
ORDER_NOTES_MAX = 500


def _entry_error(message: str, code: str, field: str | None = None) -> OrderError:
    return OrderError(message, code=code, field=field)


def _clean_quantities(items: Iterable[tuple[int, int]]) -> dict[int, int]:
    quantities: dict[int, int] = {}
    for product_id, quantity in items:
        if isinstance(quantity, bool) or not isinstance(quantity, int):
            raise _entry_error(_("Quantities must be whole numbers."), "invalid_quantity", "items")
        if not 0 <= quantity <= ORDER_MAX_QUANTITY:
            raise _entry_error(
                _("Quantities go from 0 to %(max)s.") % {"max": ORDER_MAX_QUANTITY},
                "invalid_quantity",
                "items",
            )
        if quantity:
            quantities[int(product_id)] = quantities.get(int(product_id), 0) + quantity
    return quantities


def _clean_amount(amount) -> Decimal | None:
    if amount in (None, ""):
        return None
    try:
        value = Decimal(str(amount))
    except InvalidOperation:
        value = None
    if (
        value is None
        or not value.is_finite()
        or value <= 0
        or value > ORDER_MAX_AMOUNT
        or value.as_tuple().exponent < -2
    ):
        raise _entry_error(
            _("The amount must be more than 0 and at most %(max)s, with two decimals at most.")
            % {"max": ORDER_MAX_AMOUNT},
            "invalid_amount",
            "amount",
        )
    return value.quantize(Decimal("0.01"))


def order_create(
    *,
    actor,
    table_id: int | None,
    items: Iterable[tuple[int, int]] = (),
    amount: Decimal | str | None = None,
    notes: str = "",
    form_key: uuid.UUID | None = None,
) -> Order:
    """A waiter (or staff) takes an order for a table: menu items with quantities (pairs
    of product id and quantity; 0 is skipped), an amount typed in, or both, and notes for
    the kitchen. The order is pending, belongs to `actor` and records them as its
    creator; the kitchen, the cashiers and the waiters are told after commit.

    Bad input raises OrderError (`details["field"]` names the field at fault) and stores
    nothing. The same `form_key` sent twice by the same user returns the first order.
    """
    if not has_role(actor, "waiter"):
        raise PermissionDenied(_("Only waiters take orders."))
    if not table_id:
        raise _entry_error(_("Choose a table."), "table_missing", "table")
    notes = (notes or "").strip()
    if len(notes) > ORDER_NOTES_MAX:
        raise _entry_error(
            _("Notes can be at most %(max)s characters.") % {"max": ORDER_NOTES_MAX},
            "notes_too_long",
            "notes",
        )
    quantities = _clean_quantities(items)
    extra = _clean_amount(amount)
    if not quantities and extra is None:
        raise _entry_error(_("Add at least one item or an amount."), "order_empty")
    if form_key is not None:
        existing = Order.objects.filter(form_key=form_key).first()
        if existing is not None:
            return _same_form(existing, actor)
    try:
        with transaction.atomic():
            order = _order_record(actor, table_id, quantities, extra, notes, form_key)
    except IntegrityError:
        existing = Order.objects.filter(form_key=form_key).first() if form_key else None
        if existing is None:
            raise
        return _same_form(existing, actor)
    logger.info("order %s created by user %s", order.pk, actor.pk)
    return order


def order_entered_in_admin(*, order: Order, actor) -> None:
    """The first audit row of an order staff entered in the admin (saved by the caller,
    in its transaction)."""
    OrderEvent.objects.create(
        order=order,
        action="created",
        to_status=order.status,
        source=AuditSource.STAFF,
        actor=actor,
    )


def _same_form(order: Order, actor) -> Order:
    if order.created_by_id != actor.pk:
        raise _entry_error(_("This form was already used; open a new one."), "form_reused")
    return order


def _order_record(actor, table_id, quantities, extra, notes, form_key) -> Order:
    table = Table.objects.filter(pk=table_id, active=True).first()
    if table is None:
        raise _entry_error(_("Choose a table."), "table_missing", "table")
    products = Product.objects.in_bulk(list(quantities))
    gone = [pk for pk in quantities if pk not in products or not products[pk].active]
    if gone:
        raise _entry_error(
            _("An item is no longer on the menu; check the order again."),
            "product_unavailable",
            "items",
        )
    order = Order.objects.create(
        table=table,
        waiter=actor,
        created_by=actor,
        currency=settings.ORDERS_CURRENCY,
        notes=notes,
        form_key=form_key,
    )
    lines = [
        OrderLine(order=order, product=products[pk], quantity=qty, unit_price=products[pk].price)
        for pk, qty in sorted(quantities.items())
    ]
    if extra is not None:
        lines.append(OrderLine(order=order, product=None, quantity=1, unit_price=extra))
    OrderLine.objects.bulk_create(lines)
    OrderEvent.objects.create(
        order=order,
        action="created",
        to_status=order.status,
        source=AuditSource.WAITER,
        actor=actor,
    )
    event_publish(
        audience=STAFF_AUDIENCES,
        type="order.updated",
        payload=order_payload(order) | {"action": "created", "waiter": actor.pk},
    )
    return order


# --- Kitchen and waiter steps ------------------------------------------------------------------

STEP_ROLES = {
    OrderStatus.PREPARING: "kitchen",
    OrderStatus.READY: "kitchen",
    OrderStatus.DELIVERED: "waiter",
    OrderStatus.CANCELLED: "cashier",
}
# How each role appears in the order's audit trail.
ROLE_SOURCES = {
    "kitchen": AuditSource.KITCHEN,
    "waiter": AuditSource.WAITER,
    "cashier": AuditSource.CASHIER,
}


def order_advance(*, order_id: int, to: str, actor) -> Order:
    """Kitchen: pending → preparing → ready; waiter: ready → delivered."""
    role = STEP_ROLES.get(to)
    if role is None or not has_role(actor, role):
        raise PermissionDenied(_("You may not move orders to this step."))
    with transaction.atomic():
        order = _lock(order_id)
        if (
            to == OrderStatus.DELIVERED
            and order.waiter_id != actor.pk
            and not has_role(actor, "staff")
        ):
            raise PermissionDenied(_("This order belongs to another waiter."))
        _move(order, to, source=ROLE_SOURCES[role], actor=actor)
        _updated(order)
        return order


# --- Proofs ------------------------------------------------------------------------------------


def proof_submit(*, order_id: int, upload, method: str, actor) -> PaymentProof:
    """Store a transfer receipt for a delivered order and open its payment session.

    The waiter who owns the order (or staff) only. Bad files raise ProofRejected and
    nothing is stored. A proof after a rejection is a resubmission: the next attempt, a new
    session, announced to cashiers with `action: resubmitted`.
    """
    if method not in PaymentMethod.values:
        raise OrderError(_("Choose the payment method."), code="invalid_method")
    order = Order.objects.filter(pk=order_id).first()
    if order is None:
        raise NotFound(_("No such order."))
    if not (
        has_role(actor, "staff") or (has_role(actor, "waiter") and order.waiter_id == actor.pk)
    ):
        raise PermissionDenied(_("Only the order's waiter can upload its payment proof."))
    clean = proof_file_clean(upload)
    storage = proof_storage()
    stored_name = storage.save(f"proofs/{clean.random_name}", ContentFile(clean.content))
    try:
        return _proof_record(order_id, actor, method, clean, stored_name)
    except Exception:
        storage.delete(stored_name)  # nothing half-applied: no file without its record
        raise


def _proof_record(order_id, actor, method, clean, stored_name) -> PaymentProof:
    with transaction.atomic():
        order = _lock(order_id)
        if order.status != OrderStatus.DELIVERED:
            raise OrderError(
                _("A proof can be sent only for a delivered order."), code="not_delivered"
            )
        attempt = order.proofs.count() + 1
        session = payment_session_create(
            user=order.waiter,
            purpose="order",
            provider=Provider.MANUAL_PROOF,
            params={"order": order.pk, "attempt": attempt},
            idempotency_key=f"order-{order.pk}-proof-{attempt}-{uuid.uuid4().hex[:8]}",
        ).session
        proof = PaymentProof.objects.create(
            order=order,
            file=stored_name,
            content_type=clean.content_type,
            size=len(clean.content),
            method=method,
            uploaded_by=actor,
            attempt=attempt,
            payment_session=session,
        )
        order.payment_method = method
        _move(
            order,
            OrderStatus.AWAITING_VERIFICATION,
            action="proof_resubmitted" if attempt > 1 else "proof_submitted",
            source=AuditSource.WAITER if order.waiter_id == actor.pk else AuditSource.STAFF,
            actor=actor,
            proof=proof.pk,
            attempt=attempt,
            method=method,
            payment=session.reference,
        )
        _updated(order)
        event_publish(
            audience=audience_role("cashier"),
            type="payment.verification_pending",
            payload={
                "order": order.pk,
                "table": order.table.name,
                "method": method,
                "total": order.total,
                "currency": order.currency,
                "action": "resubmitted" if attempt > 1 else "submitted",
                "attempt": attempt,
                "proof": proof.pk,
            },
        )
        return proof


def _lock_for_review(order_id: int) -> tuple[Order, PaymentProof]:
    """Lock the open proof's payment session, then the order, then the proof — the order
    the confirmation path uses (session first), so a cashier and staff acting on the same
    payment at once wait for each other instead of deadlocking."""
    session_id = (
        PaymentProof.objects.filter(order_id=order_id, status=ProofStatus.SUBMITTED)
        .values_list("payment_session_id", flat=True)
        .first()
    )
    if session_id is not None:
        PaymentSession.objects.select_for_update().filter(pk=session_id).first()
    order = _lock(order_id)
    proof = order.proofs.filter(status=ProofStatus.SUBMITTED).select_for_update().first()
    if (
        order.status != OrderStatus.AWAITING_VERIFICATION
        or proof is None
        or proof.payment_session_id != session_id
    ):
        raise OrderError(_("This order is not awaiting verification."), code="not_awaiting")
    return order, proof


def order_verify(*, order_id: int, cashier) -> Order:
    """The cashier accepts the proof: confirmed through the payments core.

    The confirmation owns its transaction (call this outside any atomic block): once it
    ran, the payment stays completed with its audit rows and alerts even when marking the
    order paid failed — that failure is then reported as OrderError, never rolled back.
    A proof rejected or already approved meanwhile: OrderError, nothing changed.
    """
    if not has_role(cashier, "cashier"):
        raise PermissionDenied(_("Only cashiers verify payments."))
    proof = (
        PaymentProof.objects.select_related("payment_session", "order")
        .filter(order_id=order_id, status=ProofStatus.SUBMITTED)
        .first()
    )
    if proof is None or proof.order.status != OrderStatus.AWAITING_VERIFICATION:
        if not Order.objects.filter(pk=order_id).exists():
            raise NotFound(_("No such order."))
        raise OrderError(_("This order is not awaiting verification."), code="not_awaiting")
    session = proof.payment_session
    result = payment_confirm(
        reference=session.reference,
        amount=session.amount,
        currency=session.currency,
        evidence=Evidence(source=AuditSource.CASHIER, actor=cashier, data={"proof": proof.pk}),
        only_if_open=True,
    )
    if not result.changed:
        # Rejected, or approved by someone else, between the page and the click.
        raise OrderError(_("This order is not awaiting verification."), code="not_awaiting")
    PaymentProof.objects.filter(pk=proof.pk).update(reviewed_by=cashier, reviewed_at=timezone.now())
    order = Order.objects.select_related("table").get(pk=order_id)
    if order.status != OrderStatus.PAID:
        raise OrderError(
            _(
                "The payment was recorded, but the order could not be marked as paid; "
                "staff were alerted."
            ),
            code="fulfilment_failed",
        )
    return order


def order_reject(*, order_id: int, cashier, reason: str) -> Order:
    """The cashier refuses the proof: the order goes back to delivered (payment method
    kept), one more rejection, and the waiter is told why."""
    if not has_role(cashier, "cashier"):
        raise PermissionDenied(_("Only cashiers verify payments."))
    reason = (reason or "").strip()
    if not reason:
        raise OrderError(_("Say why the proof is rejected."), code="reason_required")
    with transaction.atomic():
        order, proof = _lock_for_review(order_id)
        proof.status, proof.reason = ProofStatus.REJECTED, reason[:1000]
        proof.reviewed_by, proof.reviewed_at = cashier, timezone.now()
        proof.save(update_fields=["status", "reason", "reviewed_by", "reviewed_at"])
        payment_fail(
            reference=proof.payment_session.reference,
            evidence=Evidence(source=AuditSource.CASHIER, actor=cashier, reason=reason),
        )
        order.rejections += 1
        _move(
            order,
            OrderStatus.DELIVERED,
            action="proof_rejected",
            source=AuditSource.CASHIER,
            actor=cashier,
            reason=reason[:1000],
            proof=proof.pk,
            attempt=proof.attempt,
            payment=proof.payment_session.reference,
        )
        _updated(order)
        event_publish(
            audience=audience_user(order.waiter_id),
            type="payment.rejected",
            payload={
                "order": order.pk,
                "table": order.table.name,
                "reason": reason[:1000],
                "attempt": proof.attempt,
            },
        )
        return order


def proof_viewable_by(proof: PaymentProof, user) -> bool:
    """Staff, cashiers and the order's own waiter; never the kitchen or anyone else."""
    roles = user_roles(user)
    return bool(roles & {"staff", "cashier"}) or (
        "waiter" in roles and proof.order.waiter_id == user.pk
    )


# --- The purpose ---------------------------------------------------------------------------------


class OrderPurpose(Purpose):
    name = "order"
    label = gettext_lazy("Restaurant order")
    providers = (Provider.MANUAL_PROOF,)
    accepts_coupons = False
    initial_status = "processing"  # a proof is in: it waits for a cashier
    public = False  # opened only by proof_submit
    session_ttl_minutes = 7 * 24 * 60

    def quote(self, *, params, user, amount, currency) -> Quote:
        order_id = params.get("order")
        order = Order.objects.filter(pk=order_id).first() if isinstance(order_id, int) else None
        if order is None or not (order.waiter_id == user.pk or has_role(user, "staff")):
            raise InvalidParams(_("Unknown order."))
        if order.total <= 0:
            # Nothing to pay: a proof of nothing would confirm a zero payment at once.
            raise InvalidParams(_("This order has nothing to pay."), code="nothing_to_pay")
        return Quote(
            order.total,
            order.currency,
            {"order": order.pk, "attempt": params.get("attempt", 1)},
            _("Order %(id)s") % {"id": order.pk},
        )

    def fulfil(self, *, session: PaymentSession) -> None:
        order = Order.objects.select_for_update().get(pk=session.params["order"])
        proof = PaymentProof.objects.select_for_update().get(payment_session=session)
        if proof.status == ProofStatus.APPROVED and order.status == OrderStatus.PAID:
            return
        if order.status != OrderStatus.AWAITING_VERIFICATION:
            raise FulfilmentRefused(_("the order is not awaiting verification"))
        proof.status = ProofStatus.APPROVED
        proof.save(update_fields=["status"])
        confirmed = fulfilment_evidence(session)
        _move(
            order,
            OrderStatus.PAID,
            source=confirmed.source if confirmed else AuditSource.SYSTEM,
            actor=confirmed.actor if confirmed else None,
            reason=confirmed.reason if confirmed else "",
            proof=proof.pk,
            attempt=proof.attempt,
            payment=session.reference,
        )
        _updated(order)

    def fulfilled_q(self):
        return Exists(
            PaymentProof.objects.filter(payment_session=OuterRef("pk"), status=ProofStatus.APPROVED)
        )
