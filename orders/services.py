"""Orders: kitchen and waiter steps, payment proofs, cashier verification.

Every change publishes its events inside the transaction (they leave after commit);
a resubmitted proof is announced exactly like a first one, marked `resubmitted`.
Verification goes through the payments core: the proof's session is confirmed by
`payment_confirm` (source: cashier), and the `order` purpose marks the order paid.
"""

import logging
import uuid

from django.conf import settings
from django.core.files.base import ContentFile
from django.core.files.storage import FileSystemStorage
from django.db import transaction
from django.db.models import Exists, OuterRef
from django.utils import timezone
from django.utils.translation import gettext as _

from config.errors import ConfirmaError, NotFound, PermissionDenied
from config.roles import has_role, user_roles
from notifications.services import event_publish
from orders.models import (
    ORDER_TRANSITIONS,
    Order,
    OrderStatus,
    PaymentMethod,
    PaymentProof,
    ProofStatus,
)
from orders.uploads import proof_file_clean
from payments.errors import InvalidParams
from payments.models import AuditSource, PaymentSession, Provider
from payments.registry import Purpose, Quote
from payments.services import payment_confirm, payment_fail
from payments.services.confirmation import Evidence

logger = logging.getLogger(__name__)

STAFF_AUDIENCES = ["role:cashier", "role:waiter", "role:kitchen"]


class OrderError(ConfirmaError):
    code = "order_error"


def proof_storage() -> FileSystemStorage:
    return FileSystemStorage(location=settings.PRIVATE_MEDIA_ROOT)


def _lock(order_id: int) -> Order:
    try:
        return (
            Order.objects.select_for_update(of=("self",)).select_related("table").get(pk=order_id)
        )
    except Order.DoesNotExist:
        raise NotFound(_("No such order.")) from None


def _move(order: Order, to: str) -> None:
    if to not in ORDER_TRANSITIONS[order.status]:
        raise OrderError(
            _("An order that is %(status)s cannot become %(to)s.")
            % {"status": order.get_status_display(), "to": OrderStatus(to).label},
            code="invalid_transition",
        )
    order.status = to
    order.save(update_fields=["status", "payment_method", "rejections", "updated_at"])
    logger.info("order %s -> %s", order.pk, to)


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


# --- Kitchen and waiter steps ------------------------------------------------------------------

STEP_ROLES = {
    OrderStatus.PREPARING: "kitchen",
    OrderStatus.READY: "kitchen",
    OrderStatus.DELIVERED: "waiter",
    OrderStatus.CANCELLED: "cashier",
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
        _move(order, to)
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
    from payments.services import payment_session_create

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
        _move(order, OrderStatus.AWAITING_VERIFICATION)
        _updated(order)
        event_publish(
            audience="role:cashier",
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
        _move(order, OrderStatus.DELIVERED)
        _updated(order)
        event_publish(
            audience=f"user:{order.waiter_id}",
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
            from payments.errors import FulfilmentRefused

            raise FulfilmentRefused(_("the order is not awaiting verification"))
        proof.status = ProofStatus.APPROVED
        proof.save(update_fields=["status"])
        _move(order, OrderStatus.PAID)
        _updated(order)

    def fulfilled_q(self):
        return Exists(
            PaymentProof.objects.filter(payment_session=OuterRef("pk"), status=ProofStatus.APPROVED)
        )
