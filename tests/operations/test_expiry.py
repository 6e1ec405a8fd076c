"""Expiry of payment sessions: batched with bounded memory and queries, coupon holds
released, customers still waiting told, and never racing a confirmation."""

import gc
import io
import json
import threading
import tracemalloc
import uuid
from datetime import timedelta
from decimal import Decimal
from pathlib import Path

import pytest
from django.conf import settings as django_settings
from django.core.management import CommandError, call_command
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from notifications.models import Event
from payments.errors import CouponError
from payments.models import AuditSource, PaymentAudit, PaymentSession, PaymentStatus
from payments.services import payment_confirm, payment_session_create
from payments.services.confirmation import Evidence
from payments.services.coupons import coupon_apply
from payments.services.expiry import sessions_expire_due
from tests.factories import CouponFactory
from tests.payments.conftest import TEST_PURPOSE  # registers the test_purchase purpose

assert TEST_PURPOSE.name == "test_purchase"
ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.postgres


def insert_sessions(count: int, *, expires_at, created_at=None, status="pending", coupon=None):
    """Insert `count` sessions with one INSERT … SELECT generate_series (PostgreSQL)."""
    created_at = created_at or expires_at - timedelta(hours=1)
    batch = uuid.uuid4().hex[:8]
    values = {
        "purpose": "test_purchase",
        "provider": "kiosk",
        "amount": Decimal("10.00"),
        "original_amount": Decimal("10.00"),
        "currency": "BRL",
        "status": status,
        "expires_at": expires_at,
        "created_at": created_at,
        "coupon": coupon.pk if coupon else None,
    }
    columns, expressions, params = [], [], []
    for field in PaymentSession._meta.concrete_fields:
        if field.primary_key:
            continue
        columns.append(connection.ops.quote_name(field.column))
        if field.name in ("reference", "idempotency_key"):
            expressions.append("%s || g")
            params.append(f"bulk-{batch}-")
            continue
        if field.name in values:
            value = values[field.name]
        elif field.null:
            value = None
        else:
            value = field.get_default()
        expressions.append("%s")
        params.append(field.get_db_prep_save(value, connection))
    # Table and column names come from the model, values are parameters.
    sql = (
        f"INSERT INTO {PaymentSession._meta.db_table} ({', '.join(columns)}) "  # noqa: S608
        f"SELECT {', '.join(expressions)} FROM generate_series(1, %s) AS g"
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, [*params, count])


def ago(**kwargs):
    return timezone.now() - timedelta(**kwargs)


def kiosk_session(**extra):
    return payment_session_create(
        user=None,
        purpose="test_purchase",
        provider="kiosk",
        params={"item": "tea"},
        idempotency_key=uuid.uuid4().hex,
        **extra,
    ).session


def make_due(session, *, minutes=1):
    PaymentSession.objects.filter(pk=session.pk).update(expires_at=ago(minutes=minutes))


def run(*args) -> str:
    out = io.StringIO()
    call_command("expire_payment_sessions", *args, stdout=out)
    return out.getvalue().strip()


@pytest.mark.django_db
def test_only_pending_sessions_past_their_expiry_are_expired():
    due = kiosk_session()
    not_yet = kiosk_session()
    processing = kiosk_session()
    completed = kiosk_session()
    for session in (due, processing, completed):
        make_due(session)
    PaymentSession.objects.filter(pk=processing.pk).update(status=PaymentStatus.PROCESSING)
    PaymentSession.objects.filter(pk=completed.pk).update(status=PaymentStatus.COMPLETED)

    assert json.loads(run("--json")) == {"expired": 1, "batches": 1}
    states = dict(PaymentSession.objects.values_list("pk", "status"))
    assert states == {
        due.pk: "expired",
        not_yet.pk: "pending",
        processing.pk: "processing",
        completed.pk: "completed",
    }
    audit = PaymentAudit.objects.get(session=due, action="expired")
    assert (audit.source, audit.from_status, audit.to_status) == (
        AuditSource.SYSTEM,
        "pending",
        "expired",
    )
    due.refresh_from_db()
    assert due.closed_at is not None
    assert run() == "expired 0 payment sessions in 0 batches"


@pytest.mark.django_db
def test_customers_still_waiting_are_told_and_old_sessions_expire_quietly():
    recent = kiosk_session()
    make_due(recent, minutes=2)
    old = kiosk_session()
    make_due(old, minutes=3 * 60)

    assert run() == "expired 2 payment sessions in 1 batches"
    events = Event.objects.filter(type="payment.expired")
    assert list(events.values_list("audience", flat=True)) == [f"payment:{recent.reference}"]
    payload = events.get().payload
    assert payload == json.loads(
        json.dumps(
            {
                "reference": recent.reference,
                "purpose": "test_purchase",
                "status": "expired",
                "amount": "10.00",
                "currency": "BRL",
            }
        )
    )
    assert not Event.objects.filter(audience=f"payment:{old.reference}").exists()


@pytest.mark.django_db
def test_the_coupon_held_by_an_expired_session_is_released():
    coupon = CouponFactory(max_uses=1)
    holder = kiosk_session(coupon_code=coupon.code)
    assert holder.coupon_id == coupon.pk
    with pytest.raises(CouponError), transaction.atomic():
        coupon_apply(code=coupon.code, purpose="test_purchase", amount=Decimal(10), currency="BRL")

    make_due(holder)
    assert run() == "expired 1 payment sessions in 1 batches"

    with transaction.atomic():
        _, discount = coupon_apply(
            code=coupon.code, purpose="test_purchase", amount=Decimal(10), currency="BRL"
        )
    assert discount == Decimal("1.00")
    coupon.refresh_from_db()
    assert coupon.used_count == 0
    audit = PaymentAudit.objects.get(session=holder, action="expired")
    assert audit.data == {"coupon_released": coupon.pk}
    # A new session may carry the coupon again.
    assert kiosk_session(coupon_code=coupon.code).coupon_id == coupon.pk


@pytest.mark.django_db(transaction=True)
def test_a_session_being_confirmed_is_not_expired():
    session = kiosk_session()
    other = kiosk_session()
    make_due(session)
    make_due(other)
    locked, go, errors = threading.Event(), threading.Event(), []

    def confirm():
        try:
            with transaction.atomic():
                # A confirmation holds the session row (as payment_confirm does) ...
                PaymentSession.objects.select_for_update().get(pk=session.pk)
                locked.set()
                go.wait(10)
            # ... while the expiry runs; then it completes (in a transaction of its own).
            payment_confirm(
                reference=session.reference,
                evidence=Evidence(source=AuditSource.RECONCILER),
                amount=Decimal("10.00"),
                currency="BRL",
            )
        except Exception as exc:  # pragma: no cover - reported below
            errors.append(exc)
        finally:
            connection.close()

    thread = threading.Thread(target=confirm)
    thread.start()
    assert locked.wait(10)
    try:
        result = sessions_expire_due(batch_size=10)
    finally:
        go.set()
        thread.join(20)
    assert errors == []
    assert (result.expired, result.batches) == (1, 1)
    session.refresh_from_db()
    other.refresh_from_db()
    assert session.status == PaymentStatus.COMPLETED and not session.late_payment
    assert other.status == PaymentStatus.EXPIRED
    assert not PaymentAudit.objects.filter(session=session, action="expired").exists()
    # Completed sessions are never expired later either.
    assert sessions_expire_due().expired == 0
    session.refresh_from_db()
    assert session.status == PaymentStatus.COMPLETED


@pytest.mark.django_db
def test_queries_grow_with_batches_not_with_rows():
    def queries(rows: int, batch_size: int):
        insert_sessions(rows, expires_at=ago(hours=3))
        with CaptureQueriesContext(connection) as captured:
            result = sessions_expire_due(batch_size=batch_size)
        assert result.expired == rows
        return result.batches, len(captured.captured_queries)

    batches_2, two = queries(200, 100)
    batches_4, four = queries(400, 100)
    batches_big, two_big = queries(2000, 1000)
    assert (batches_2, batches_4, batches_big) == (2, 4, 2)
    per_batch = (four - two) // 2
    assert four - two == 2 * per_batch
    assert per_batch <= 6, per_batch  # savepoint, lock, update, audits, release
    assert two_big == two  # ten times the rows, the same queries
    assert two - 2 * per_batch <= 3  # the final "anything left?" probe


@pytest.mark.django_db
def test_a_large_backlog_expires_in_batches_with_bounded_memory():
    def peak_while_expiring(rows: int) -> int:
        insert_sessions(rows, expires_at=ago(hours=3))
        gc.collect()
        tracemalloc.start()
        try:
            result = sessions_expire_due(batch_size=1000)
            _, peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
        assert (result.expired, result.batches) == (rows, rows // 1000)
        return peak

    small = peak_while_expiring(10_000)
    large = peak_while_expiring(50_000)
    assert PaymentSession.objects.filter(status=PaymentStatus.EXPIRED).count() == 60_000
    assert PaymentAudit.objects.filter(action="expired").count() == 60_000
    # One batch's worth of rows at a time (about 1.4 MB here): five times the rows, the
    # same peak.
    assert large < 4 * 1024 * 1024, large
    assert large < small * 1.5 + 512 * 1024, (small, large)


@pytest.mark.django_db
def test_bad_input_is_refused_with_status_2():
    with pytest.raises(CommandError, match="at least 1") as caught:
        run("--batch-size", "0")
    assert caught.value.returncode == 2


def test_it_runs_every_minute():
    jobs = {job["command"]: job["every"] for job in django_settings.PERIODIC_JOBS}
    assert jobs["expire_payment_sessions"] == 60
