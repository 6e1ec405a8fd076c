"""Property tests of every state machine, driving the real services against the database.

Each Hypothesis example is a random sequence of service calls (any order, any repetition)
run in a savepoint of the test's transaction and rolled back afterwards. After every call
the database is checked against the machine's written transitions and its promises:
terminal states never regress, what was paid for is delivered at most once, and every
change leaves an audit row.
"""

import contextlib
import itertools
from datetime import timedelta
from decimal import Decimal

import pytest
from django.db import transaction
from django.utils import timezone
from hypothesis import event, given, settings
from hypothesis import strategies as st

from core.errors import ConfirmaError
from notifications.models import Event
from payments.errors import PaymentError
from payments.models import (
    CLOSED_UNPAID_STATUSES,
    OPEN_STATUSES,
    PAYMENT_TRANSITIONS,
    AuditSource,
    PaymentAudit,
    PaymentSession,
    PaymentStatus,
    Provider,
)
from payments.services import (
    payment_cancel,
    payment_confirm,
    payment_expire,
    payment_fail,
    payment_fulfil,
    payment_mark_processing,
    payment_refund,
    payment_session_create,
)
from payments.services.confirmation import Evidence
from tests.factories import (
    MachineFactory,
    PaymentAuditFactory,
    PaymentSessionFactory,
    PlanFactory,
    PrinterFactory,
    ServiceFactory,
    UserFactory,
)
from tests.orders.conftest import make_order, png_bytes, upload
from tests.payments.conftest import *  # noqa: F403 - registers the test_purchase purpose

pytestmark = pytest.mark.django_db

WEBHOOK = Evidence(source=AuditSource.WEBHOOK)
RECONCILER = Evidence(source=AuditSource.RECONCILER)
_keys = itertools.count()


@contextlib.contextmanager
def rolled_back():
    """One example's database work, undone afterwards. A bare savepoint, not an atomic
    block: the services that take in money own their transaction and refuse to run inside
    a caller's atomic block (the test's own blocks excepted)."""
    savepoint = transaction.savepoint()
    try:
        yield
    finally:
        transaction.savepoint_rollback(savepoint)


def open_payment(*, purpose, params, user, amount, currency, provider, overdue=False):
    """A payment session as `payment_session_create` leaves it, without a provider call."""
    session = PaymentSessionFactory(
        purpose=purpose,
        params=params,
        provider=provider,
        user=user,
        amount=amount,
        currency=currency,
        expires_at=timezone.now() + timedelta(hours=-1 if overdue else 1),
        provider_data={"fuzz": True},
    )
    PaymentAuditFactory(
        session=session, action="created", to_status=session.status, source=AuditSource.CUSTOMER
    )
    return session


# Where a payment session may go, plus the late payment: money that arrives for a failed,
# expired or cancelled session is recorded as completed (and flagged), never dropped.
PAYMENT_MAY_BECOME = {
    before: set(after) | ({PaymentStatus.COMPLETED} if before in CLOSED_UNPAID_STATUSES else set())
    for before, after in PAYMENT_TRANSITIONS.items()
}


class PaymentWatch:
    """Checks the payment sessions' promises after every step (two queries a check)."""

    FIELDS = ("pk", "status", "fulfilled_at", "completed_at", "refund_due", "amount_mismatch")

    def __init__(self, *sessions):
        self.ids = [s.pk for s in sessions]
        self.rows = self._rows()
        self.last_audit = max(
            PaymentAudit.objects.filter(session_id__in=self.ids).values_list("id", flat=True),
            default=0,
        )
        self.fulfilled = {
            pk: PaymentAudit.objects.filter(session_id=pk, action="fulfilled").count()
            for pk in self.ids
        }

    def _rows(self):
        rows = PaymentSession.objects.filter(pk__in=self.ids).values(
            *self.FIELDS, "fulfilment_error"
        )
        return {row["pk"]: row for row in rows}

    def check(self, step):
        rows = self._rows()
        audits = list(
            PaymentAudit.objects.filter(session_id__in=self.ids, id__gt=self.last_audit)
            .order_by("id")
            .values_list("id", "session_id", "action", "from_status", "to_status")
        )
        if audits:
            self.last_audit = audits[-1][0]
        for pk, row in rows.items():
            old, mine = self.rows[pk], [a for a in audits if a[1] == pk]
            before, after = old["status"], row["status"]
            if after != before:
                assert after in PAYMENT_MAY_BECOME[before], f"{step}: {before} -> {after}"
                assert any(a[3:] == (before, after) for a in mine), (
                    f"{step}: {before} -> {after} without an audit row"
                )
            self.fulfilled[pk] += sum(1 for a in mine if a[2] == "fulfilled")
            assert self.fulfilled[pk] <= 1, f"{step}: fulfilled twice"
            if old["fulfilled_at"] is not None:
                assert row["fulfilled_at"] == old["fulfilled_at"], f"{step}: fulfilled again"
            elif row["fulfilled_at"] is not None:
                assert any(a[2] == "fulfilled" for a in mine)
            if row["fulfilled_at"] is not None:
                assert after in (PaymentStatus.COMPLETED, PaymentStatus.REFUNDED)
            if after == PaymentStatus.COMPLETED:
                # Money that arrived is delivered, or kept visibly for a decision.
                assert row["completed_at"] is not None
                assert (
                    row["fulfilled_at"] is not None
                    or row["refund_due"]
                    or row["amount_mismatch"]
                    or row["fulfilment_error"]
                ), f"{step}: completed, not fulfilled and not flagged"
        self.rows = rows


# --- Payment sessions ---------------------------------------------------------------------------

SESSION = st.integers(0, 1)
PPID = st.sampled_from(["", "pay-1", "pay-2"])
PAYMENT_ACTIONS = st.one_of(
    # The exact amount three times in four: most payments should get to fulfilment.
    st.tuples(st.just("confirm"), SESSION, PPID, st.sampled_from([True, True, True, False])),
    st.tuples(st.just("confirm"), SESSION, st.just(""), st.just(True)),
    st.tuples(st.just("fail"), SESSION, PPID),
    st.tuples(st.just("cancel"), SESSION, PPID),
    st.tuples(st.just("expire"), SESSION, PPID, st.booleans()),
    st.tuples(st.just("processing"), SESSION, PPID),
    st.tuples(st.just("refund"), SESSION, PPID, st.booleans()),
    st.tuples(st.just("fulfil"), SESSION, st.booleans()),
    st.tuples(st.just("fulfilment_breaks"), st.sampled_from([True, False, False])),
)


def _apply_payment(action, sessions, purpose):
    name, args = action[0], action[1:]
    if name == "fulfilment_breaks":
        purpose.failing = args[0]
        return None
    session = sessions[args[0]]
    ref = session.reference
    if name == "confirm":
        ppid, exact = args[1], args[2]
        amount = session.amount if exact else session.amount + Decimal("0.01")
        return payment_confirm(
            reference=ref,
            evidence=WEBHOOK,
            amount=amount,
            currency=session.currency,
            provider_payment_id=ppid,
        )
    if name == "fail":
        return payment_fail(reference=ref, evidence=WEBHOOK, provider_payment_id=args[1])
    if name == "cancel":
        return payment_cancel(reference=ref, evidence=WEBHOOK, provider_payment_id=args[1])
    if name == "expire":
        return payment_expire(
            reference=ref, evidence=WEBHOOK, provider_payment_id=args[1], force=args[2]
        )
    if name == "processing":
        return payment_mark_processing(reference=ref, evidence=WEBHOOK, provider_payment_id=args[1])
    if name == "refund":
        return payment_refund(
            reference=ref, evidence=WEBHOOK, provider_payment_id=args[1], chargeback=args[2]
        )
    staff = Evidence(source=AuditSource.STAFF, reason="checked the bank statement")
    return payment_fulfil(
        reference=ref, evidence=staff if args[1] else RECONCILER, accept_review=args[1]
    )


def _expect_payment(action, session, before, ppid_before, raised):
    """What must have happened, beyond the invariants (the machine makes progress)."""
    name = action[0]
    after = session.status
    if raised:
        assert after == before, f"{action} raised but changed {before} -> {after}"
        return
    other = len(action) > 2 and action[2] and ppid_before and action[2] != ppid_before
    if name == "confirm":
        if before in (PaymentStatus.COMPLETED, PaymentStatus.REFUNDED):
            assert after == before
        else:
            assert after == PaymentStatus.COMPLETED
            if not action[3]:
                # A wrong amount is held for review first (even when it is also late).
                assert session.amount_mismatch and session.fulfilled_at is None
            elif before in CLOSED_UNPAID_STATUSES:
                assert session.late_payment and session.refund_due
                assert session.fulfilled_at is None
    elif name in ("fail", "cancel"):
        target = PaymentStatus.FAILED if name == "fail" else PaymentStatus.CANCELLED
        if before in OPEN_STATUSES and not other:
            assert after == target
        elif before != target:
            assert after == before
    elif name == "expire" and before in OPEN_STATUSES and not other:
        due = action[3] or session.expires_at <= timezone.now()
        assert after == (PaymentStatus.EXPIRED if due else before)
    elif name == "processing":
        assert after == (PaymentStatus.PROCESSING if before == PaymentStatus.PENDING else before)
    elif name == "refund":
        if before == PaymentStatus.COMPLETED and not other:
            assert after == PaymentStatus.REFUNDED
        else:
            assert after == before


def _held_elsewhere(session, ppid: str) -> bool:
    others = PaymentSession.objects.exclude(pk=session.pk)
    return (
        bool(ppid) and others.filter(provider=session.provider, provider_payment_id=ppid).exists()
    )


@given(
    overdue=st.tuples(st.booleans(), st.booleans()),
    actions=st.lists(PAYMENT_ACTIONS, min_size=1, max_size=12),
)
@settings(max_examples=40)
def test_payment_sessions_never_regress_fulfil_once_and_audit_every_change(
    overdue, actions, test_purpose
):
    test_purpose.failing = False
    with rolled_back():
        sessions = [
            payment_session_create(
                user=None,
                purpose="test_purchase",
                provider=Provider.KIOSK,
                params={"item": "tea"},
                idempotency_key=f"fuzz-pay-{next(_keys)}",
            ).session
            for _ in range(2)
        ]
        for session, late in zip(sessions, overdue, strict=True):
            if late:
                PaymentSession.objects.filter(pk=session.pk).update(
                    expires_at=timezone.now() - timedelta(minutes=1)
                )
        watch = PaymentWatch(*sessions)
        for step, action in enumerate(actions):
            session = sessions[action[1]] if action[0] != "fulfilment_breaks" else None
            if session is not None:
                session.refresh_from_db()
                before, ppid_before = session.status, session.provider_payment_id
                if action[0] in ("fail", "cancel", "expire") and _held_elsewhere(
                    session, action[2]
                ):
                    continue  # an IntegrityError: see test_closing_notice_naming_...
            try:
                _apply_payment(action, sessions, test_purpose)
                raised = False
            except PaymentError:
                raised = True
            watch.check((step, action))
            if session is not None:
                session.refresh_from_db()
                _expect_payment(action, session, before, ppid_before, raised)
        for session in sessions:
            event(f"payment ends {session.status}{' fulfilled' if session.fulfilled_at else ''}")
            fulfilled = Event.objects.filter(
                type="test.fulfilled", audience=f"payment:{session.reference}"
            ).count()
            assert fulfilled == (1 if session.fulfilled_at else 0)
    test_purpose.failing = False


@pytest.mark.parametrize("close", [payment_fail, payment_cancel, payment_expire])
def test_closing_notice_naming_another_sessions_payment_is_refused_cleanly(close):
    first, second = (
        payment_session_create(
            user=None,
            purpose="test_purchase",
            provider=Provider.KIOSK,
            params={"item": "tea"},
            idempotency_key=f"fuzz-taken-{n}",
        ).session
        for n in range(2)
    )
    payment_mark_processing(reference=first.reference, evidence=WEBHOOK, provider_payment_id="tx-1")
    extra = {"force": True} if close is payment_expire else {}
    with pytest.raises(PaymentError):
        close(reference=second.reference, evidence=WEBHOOK, provider_payment_id="tx-1", **extra)


# --- Usage sessions (pay-per-use machines) -------------------------------------------------------


def _usage_may_become():
    from subscriptions.models import USAGE_TRANSITIONS

    return USAGE_TRANSITIONS


USAGE_ACTIONS = st.one_of(
    st.tuples(st.just("pay"), st.integers(0, 1), st.integers(0, 2)),
    st.tuples(st.just("fail_payment"), st.integers(0, 1), st.integers(0, 2)),
    st.tuples(st.just("expire_payment"), st.integers(0, 1), st.integers(0, 2)),
    st.tuples(st.just("refund_payment"), st.integers(0, 1), st.integers(0, 2)),
    st.tuples(st.just("complete_due"), st.booleans()),
    st.tuples(st.just("expire_unpaid"), st.integers(0, 1)),
    st.tuples(st.just("end"), st.integers(0, 1), st.sampled_from(["broken door", " "])),
    st.tuples(st.just("extend"), st.integers(0, 1), st.sampled_from([1, 15, 0, 2000])),
)


@given(actions=st.lists(USAGE_ACTIONS, min_size=1, max_size=12))
@settings(max_examples=30)
def test_usage_sessions_follow_their_transitions(actions):
    from subscriptions.models import UsageEvent, UsageSession, UsageStatus
    from subscriptions.services.machines import (
        usage_session_end,
        usage_session_extend,
        usage_session_start,
        usage_sessions_complete_due,
        usage_sessions_expire_unpaid,
    )

    transitions = _usage_may_become()
    with rolled_back():
        machine = MachineFactory()
        customers = [UserFactory(roles=["customer"]) for _ in range(2)]
        staff = UserFactory(roles=["staff"])
        usages = [
            usage_session_start(customer=c, machine_code=machine.code, minutes=30)
            for c in customers
        ]
        payments = {}  # (usage index, attempt) -> payment session

        def payment(u, attempt):
            if (u, attempt) not in payments:
                usage = usages[u]
                payments[u, attempt] = open_payment(
                    purpose="machine_session",
                    params={"usage_session": usage.pk},
                    user=usage.customer,
                    amount=usage.amount,
                    currency=usage.currency,
                    provider=Provider.MERCADOPAGO,
                )
            return payments[u, attempt]

        seen = {u.pk: (u.status, u.payment_session_id, u.events.count()) for u in usages}
        for step, action in enumerate(actions):
            name = action[0]
            try:
                if name == "pay":
                    p = payment(action[1], action[2])
                    payment_confirm(
                        reference=p.reference, evidence=WEBHOOK, amount=p.amount, currency="BRL"
                    )
                elif name == "fail_payment":
                    payment_fail(reference=payment(*action[1:]).reference, evidence=WEBHOOK)
                elif name == "expire_payment":
                    p = payment(*action[1:])
                    payment_expire(reference=p.reference, evidence=WEBHOOK, force=True)
                elif name == "refund_payment":
                    payment_refund(reference=payment(*action[1:]).reference, evidence=WEBHOOK)
                elif name == "complete_due":
                    later = timezone.now() + timedelta(hours=3 if action[1] else 0)
                    usage_sessions_complete_due(now=later)
                elif name == "expire_unpaid":
                    UsageSession.objects.filter(pk=usages[action[1]].pk).update(
                        created_at=timezone.now() - timedelta(hours=2)
                    )
                    usage_sessions_expire_unpaid(older_than_minutes=60)
                elif name == "end":
                    usage_session_end(
                        usage_session_id=usages[action[1]].pk, actor=staff, reason=action[2]
                    )
                else:
                    usage_session_extend(
                        usage_session_id=usages[action[1]].pk,
                        minutes=action[2],
                        actor=staff,
                        reason="customer asked",
                    )
            except ConfirmaError:
                pass
            for usage in usages:
                usage.refresh_from_db()
                before, paid_by, events = seen[usage.pk]
                now_events = usage.events.count()
                if usage.status != before:
                    assert usage.status in transitions[before], f"{step} {action}"
                    assert now_events > events, f"{step} {action}: change without an event"
                if paid_by is not None:
                    assert usage.payment_session_id == paid_by, "activated by another payment"
                assert usage.events.filter(type="activated").count() <= 1
                if usage.status == UsageStatus.ACTIVE:
                    # Paid for (a refund afterwards is alerted; the machine keeps running).
                    paid = (PaymentStatus.COMPLETED, PaymentStatus.REFUNDED)
                    assert usage.payment_session.status in paid
                seen[usage.pk] = (usage.status, usage.payment_session_id, now_events)
            active = UsageSession.objects.filter(machine=machine, status=UsageStatus.ACTIVE)
            assert active.count() <= 1
        for usage in usages:
            event(f"usage ends {usage.status}")
        watch = PaymentWatch(*payments.values())
        watch.check("end")  # every payment that completed was delivered or flagged
        activations = UsageEvent.objects.filter(usage_session__in=usages, type="activated")
        assert activations.count() == sum(1 for u in usages if u.payment_session_id)


# --- Tickets and print jobs ----------------------------------------------------------------------

# Weighted towards the usual path (print, call, start, complete) so that sequences get
# through the whole queue; the other steps still come in any order.
TICKET_ACTIONS = st.one_of(
    st.tuples(st.just("print"), st.integers(0, 3), st.just(True)),
    st.tuples(st.just("print"), st.integers(0, 3), st.booleans()),
    st.tuples(st.just("call_next")),
    st.tuples(st.just("call_next")),
    st.tuples(st.just("start")),
    st.tuples(st.just("start")),
    st.tuples(st.just("complete")),
    st.tuples(st.just("complete")),
    st.tuples(st.just("confirm_again")),
    st.tuples(st.just("reprint")),
    st.tuples(st.sampled_from(["recall", "no_show", "cancel"])),
)


@given(actions=st.lists(TICKET_ACTIONS, min_size=1, max_size=12))
@settings(max_examples=30)
def test_tickets_and_print_jobs_follow_their_transitions(actions, settings):
    from tickets.errors import TicketError
    from tickets.models import (
        FINISHED_STATUSES,
        TICKET_TRANSITIONS,
        PrintJob,
        PrintJobStatus,
        Ticket,
        TicketStatus,
    )
    from tickets.services import (
        print_job_run,
        ticket_call_next,
        ticket_cancel,
        ticket_complete,
        ticket_no_show,
        ticket_recall,
        ticket_start,
    )
    from tickets.services.desks import ticket_reprint_request

    settings.PRINT_MAX_ATTEMPTS = 2
    operator = None
    steps = {
        "recall": (ticket_recall, {TicketStatus.CALLED}),
        "start": (ticket_start, None),
        "complete": (ticket_complete, None),
        "no_show": (ticket_no_show, None),
        "cancel": (ticket_cancel, None),
    }
    targets = {
        "start": TicketStatus.IN_PROGRESS,
        "complete": TicketStatus.COMPLETED,
        "no_show": TicketStatus.NO_SHOW,
        "cancel": TicketStatus.CANCELLED,
    }
    with rolled_back():
        operator = UserFactory(roles=["operator"])
        service = ServiceFactory(name="Emissão de 2ª via", prefix="Z")
        printer = PrinterFactory(name="Balcão")
        session = payment_session_create(
            user=None,
            purpose="ticket",
            provider=Provider.KIOSK,
            params={"service": service.pk, "customer_name": "Iñés Souza"},
            idempotency_key=f"fuzz-ticket-{next(_keys)}",
        ).session
        payment_confirm(
            reference=session.reference, evidence=WEBHOOK, amount=session.amount, currency="BRL"
        )
        ticket = Ticket.objects.get(payment_session=session)
        seen_status = ticket.status
        last_event = ticket.events.order_by("-id").values_list("id", flat=True).first()
        jobs_seen = {}
        for step, action in enumerate(actions):
            name = action[0]
            ticket.refresh_from_db()
            before = ticket.status
            raised = False
            try:
                if name == "confirm_again":
                    payment_confirm(
                        reference=session.reference,
                        evidence=WEBHOOK,
                        amount=session.amount,
                        currency="BRL",
                    )
                elif name == "print":
                    jobs = list(PrintJob.objects.filter(ticket=ticket).order_by("id"))
                    job = jobs[action[1] % len(jobs)]
                    printer.url = "dummy:" if action[2] else "nowhere:"
                    printer.save(update_fields=["url"])
                    print_job_run(job_id=job.pk)
                elif name == "reprint":
                    ticket_reprint_request(ticket_id=ticket.pk, actor=operator, reason="fuzz")
                elif name == "call_next":
                    called = ticket_call_next(operator=operator, desk="3")
                    waiting = before in (TicketStatus.IN_QUEUE, TicketStatus.PRINT_ERROR)
                    assert (called is not None) == waiting, f"{step} {action} from {before}"
                else:
                    service_call = steps[name][0]
                    service_call(
                        ticket_id=ticket.pk,
                        **({"actor": operator} if name == "cancel" else {"operator": operator}),
                    )
            except TicketError:
                raised = True
            ticket.refresh_from_db()
            if name in steps:
                allowed = (
                    before in steps[name][1]
                    if steps[name][1]
                    else targets[name] in TICKET_TRANSITIONS[before]
                )
                assert raised != allowed, f"{step} {action} from {before}: raised={raised}"
            if name == "reprint":
                assert raised == (before in FINISHED_STATUSES)  # any unfinished ticket
            # One call may take several steps (PAID -> PRINTING -> IN_QUEUE): each one
            # allowed, each one an event, chained from the last status seen.
            moves = list(
                ticket.events.filter(id__gt=last_event)
                .exclude(type__in=["created", "reprint"])
                .order_by("id")
                .values_list("id", "from_status", "to_status")
            )
            position = seen_status
            for _, frm, to in moves:
                assert frm == position, f"{step} {action}: event from {frm}, ticket was {position}"
                assert to in TICKET_TRANSITIONS[frm], f"{step} {action}: {frm} -> {to}"
                position = to
            assert position == ticket.status, f"{step} {action}: {ticket.status} without an event"
            last_event = ticket.events.order_by("-id").values_list("id", flat=True).first()
            seen_status = ticket.status
            for job in PrintJob.objects.filter(ticket=ticket):
                previous = jobs_seen.get(job.pk)
                if previous in (PrintJobStatus.PRINTED, PrintJobStatus.FAILED):
                    assert job.status == previous, (
                        f"{step} {action}: job {previous} -> {job.status}"
                    )
                assert job.attempts <= 2
                assert job.status != PrintJobStatus.SENDING  # never left half-sent
                jobs_seen[job.pk] = job.status
            assert Ticket.objects.filter(payment_session=session).count() == 1
        assert session.audits.filter(action="fulfilled").count() == 1
        event(f"ticket ends {ticket.status}")


# --- Restaurant orders ---------------------------------------------------------------------------

ORDER_ACTIONS = st.one_of(
    # The next step of the usual flow, by the person who takes it (twice the weight).
    st.tuples(st.just("next"), st.sampled_from([True, True, False])),
    st.tuples(st.just("next"), st.sampled_from([True, True, False])),
    st.tuples(st.just("next"), st.sampled_from([True, False, False])),
    st.tuples(st.just("next"), st.sampled_from([True, False, False])),
    st.tuples(
        st.just("advance"),
        st.sampled_from(["preparing", "ready", "delivered", "cancelled"]),
        st.sampled_from(["kitchen", "waiter", "cashier", "other_waiter"]),
    ),
    st.tuples(st.just("proof"), st.sampled_from(["waiter", "other_waiter", "staff"])),
    st.tuples(st.just("verify"), st.sampled_from(["cashier", "waiter"])),
    st.tuples(
        st.just("reject"), st.sampled_from(["cashier", "waiter"]), st.sampled_from(["blurry", " "])
    ),
    st.tuples(st.just("confirm_proof_again")),
)


def _next_order_step(status: str, *, approve: bool) -> tuple[str, tuple]:
    flow = {
        "pending": ("advance", "preparing", "kitchen"),
        "preparing": ("advance", "ready", "kitchen"),
        "ready": ("advance", "delivered", "waiter"),
        "delivered": ("proof", "waiter"),
        "awaiting_verification": ("verify", "cashier")
        if approve
        else ("reject", "cashier", "the amount is wrong"),
    }
    action = flow.get(status, ("confirm_proof_again",))
    return action[0], action


@given(actions=st.lists(ORDER_ACTIONS, min_size=1, max_size=12))
@settings(max_examples=25)
def test_orders_follow_their_transitions(actions, settings, tmp_path):
    from orders.models import ORDER_TRANSITIONS, OrderStatus, PaymentProof, ProofStatus
    from orders.services import order_advance, order_reject, order_verify, proof_submit

    settings.PRIVATE_MEDIA_ROOT = tmp_path / "private"
    image = png_bytes()
    with rolled_back():
        people = {
            role: UserFactory(roles=[role.replace("other_", "")])
            for role in ("waiter", "other_waiter", "cashier", "kitchen", "staff")
        }
        order = make_order(people["waiter"], status=OrderStatus.PENDING)
        seen = order.status
        for step, action in enumerate(actions):
            name = action[0]
            updates = Event.objects.filter(type="order.updated", audience="role:cashier").count()
            if name == "next":
                order.refresh_from_db()
                name, action = _next_order_step(order.status, approve=action[1])
            try:
                if name == "advance":
                    order_advance(order_id=order.pk, to=action[1], actor=people[action[2]])
                elif name == "proof":
                    proof_submit(
                        order_id=order.pk,
                        upload=upload(image),
                        method="transfer",
                        actor=people[action[1]],
                    )
                elif name == "verify":
                    order_verify(order_id=order.pk, cashier=people[action[1]])
                elif name == "reject":
                    order_reject(order_id=order.pk, cashier=people[action[1]], reason=action[2])
                else:
                    proof = order.proofs.order_by("-id").first()
                    if proof is not None:
                        payment_confirm(
                            reference=proof.payment_session.reference,
                            evidence=Evidence(source=AuditSource.CASHIER),
                            amount=proof.payment_session.amount,
                            currency=proof.payment_session.currency,
                        )
            except ConfirmaError:
                pass
            order.refresh_from_db()
            if order.status != seen:
                assert order.status in ORDER_TRANSITIONS[seen], (
                    f"{step} {action}: {seen} -> {order.status}"
                )
                now_updates = Event.objects.filter(type="order.updated", audience="role:cashier")
                assert now_updates.count() > updates, f"{step} {action}: change not announced"
            seen = order.status
            proofs = PaymentProof.objects.filter(order=order)
            assert proofs.filter(status=ProofStatus.SUBMITTED).count() <= 1
            assert proofs.filter(status=ProofStatus.APPROVED).count() == (
                1 if order.status == OrderStatus.PAID else 0
            )
            assert order.rejections == proofs.filter(status=ProofStatus.REJECTED).count()
            for proof in proofs.select_related("payment_session"):
                payment = proof.payment_session
                expected = {
                    ProofStatus.SUBMITTED: PaymentStatus.PROCESSING,
                    ProofStatus.APPROVED: PaymentStatus.COMPLETED,
                    ProofStatus.REJECTED: PaymentStatus.FAILED,
                }[proof.status]
                late = (  # money confirmed after the rejection: kept, flagged, not delivered
                    proof.status == ProofStatus.REJECTED
                    and payment.status == PaymentStatus.COMPLETED
                    and payment.late_payment
                    and payment.refund_due
                    and payment.fulfilled_at is None
                )
                assert payment.status == expected or late, f"{step} {action}: {proof}"
            if order.status == OrderStatus.AWAITING_VERIFICATION:
                assert proofs.filter(status=ProofStatus.SUBMITTED).exists()
            if proofs.exists():
                assert order.payment_method == "transfer"
        event(f"order ends {order.status} after {order.rejections} rejection(s)")


# --- Plan subscriptions --------------------------------------------------------------------------

SUBSCRIPTION_ACTIONS = st.one_of(
    st.tuples(st.just("pay"), st.sampled_from(["uzs", "usd"]), st.booleans()),
    st.tuples(st.just("confirm_again"), st.integers(0, 5)),
    st.tuples(st.just("refund"), st.integers(0, 5)),
    st.tuples(st.just("activate"), st.sampled_from([1, 30, 0, 4000])),
    st.tuples(st.just("deactivate"), st.sampled_from(["fraud", ""])),
    st.tuples(st.just("expire_due"), st.sampled_from([0, 29, 31, 400])),
)


@given(actions=st.lists(SUBSCRIPTION_ACTIONS, min_size=1, max_size=12))
@settings(max_examples=30)
def test_subscriptions_extend_from_the_later_of_now_and_period_end(actions):
    from subscriptions.errors import SubscriptionError
    from subscriptions.models import (
        Subscription,
        SubscriptionEvent,
        SubscriptionEventType,
        SubscriptionStatus,
    )
    from subscriptions.services.plans import (
        plan_change_credit,
        subscription_activate_manually,
        subscription_deactivate,
        subscription_for,
        subscriptions_expire_due,
    )

    with rolled_back():
        plans = {
            "uzs": PlanFactory(
                code="fuzz-uzs",
                name="Basic",
                tier="basic",
                price=Decimal("49000.00"),
                currency="UZS",
            ),
            "usd": PlanFactory(
                code="fuzz-usd",
                name="Pro",
                tier="pro",
                price=Decimal("9.99"),
                currency="USD",
                period_days=7,
            ),
        }
        user = UserFactory(roles=["customer"])
        staff = UserFactory(roles=["staff"], is_staff=True)
        subscription = subscription_for(user)
        payments = []
        for step, action in enumerate(actions):
            name = action[0]
            subscription.refresh_from_db()
            status, end = subscription.status, subscription.current_period_end
            plan_before = subscription.plan
            events = SubscriptionEvent.objects.filter(subscription=subscription).count()
            t0 = timezone.now()
            days = None  # days the action should add, when it activates or renews
            plan = None  # the plan it gives
            raised = False
            try:
                if name == "pay":
                    plan, exact = plans[action[1]], action[2]
                    session = open_payment(
                        purpose="subscription",
                        params={"plan": plan.code},
                        user=user,
                        amount=plan.price,
                        currency=plan.currency,
                        provider=Provider.CLICK if plan.currency == "UZS" else Provider.COINBASE,
                    )
                    payments.append(session)
                    payment_confirm(
                        reference=session.reference,
                        evidence=WEBHOOK,
                        amount=plan.price if exact else plan.price - 1,
                        currency=plan.currency,
                    )
                    days = plan.period_days if exact else None
                elif name in ("confirm_again", "refund") and payments:
                    session = payments[action[1] % len(payments)]
                    if name == "refund":
                        payment_refund(reference=session.reference, evidence=WEBHOOK)
                    else:
                        payment_confirm(
                            reference=session.reference,
                            evidence=WEBHOOK,
                            amount=session.amount,
                            currency=session.currency,
                        )
                elif name == "activate":
                    subscription_activate_manually(
                        user=user, plan=plans["usd"], days=action[1], actor=staff, reason="gift"
                    )
                    days, plan = action[1], plans["usd"]
                elif name == "deactivate":
                    subscription_deactivate(user=user, actor=staff, reason=action[1])
                elif name == "expire_due":
                    subscriptions_expire_due(now=timezone.now() + timedelta(days=action[1]))
            except (SubscriptionError, PaymentError):
                raised = True
            t1 = timezone.now()
            subscription = Subscription.objects.get(pk=subscription.pk)
            new_events = SubscriptionEvent.objects.filter(subscription=subscription)
            changed = (subscription.status, subscription.current_period_end) != (status, end)
            if raised:
                assert not changed, f"{step} {action} raised but changed the subscription"
            if changed:
                assert new_events.count() > events, f"{step} {action}: change without an event"
            if days is not None and not raised:
                assert subscription.status == SubscriptionStatus.ACTIVE
                running = status == SubscriptionStatus.ACTIVE and end is not None and end > t1
                if running and plan.tier != plan_before.tier:
                    # A plan change: a new period from now, the unused time credited.
                    low = t0 + timedelta(days=days)
                    low += plan_change_credit(old=plan_before, new=plan, remaining=end - t1)
                    high = t1 + timedelta(days=days)
                    high += plan_change_credit(old=plan_before, new=plan, remaining=end - t0)
                    assert low <= subscription.current_period_end <= high, f"{step} {action}"
                elif running:
                    assert subscription.current_period_end == end + timedelta(days=days)
                else:
                    assert (
                        t0 + timedelta(days=days)
                        <= subscription.current_period_end
                        <= t1 + timedelta(days=days)
                    ), f"{step} {action}: a lapsed subscription restarts from now"
            elif name in ("confirm_again", "refund"):
                assert not changed, f"{step} {action}: a repeat or refund moved the period"
            if name == "pay" and not action[2]:
                assert not changed, "a payment held for review activated the subscription"
                assert new_events.filter(type=SubscriptionEventType.PAYMENT_MISMATCH).exists()
            if name == "deactivate" and not raised:
                assert subscription.status == SubscriptionStatus.CANCELLED
                assert subscription.current_period_end <= t1
        for kind in set(SubscriptionEvent.objects.filter(user=user).values_list("type", flat=True)):
            event(f"subscription event {kind}")
        for session in payments:
            activations = SubscriptionEvent.objects.filter(
                payment_session=session,
                type__in=[SubscriptionEventType.ACTIVATED, SubscriptionEventType.RENEWED],
            )
            assert activations.count() <= 1
        PaymentWatch(*payments).check("end")
