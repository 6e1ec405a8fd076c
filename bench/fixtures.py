"""Data the benchmarks need, written with Django in the harness process (same settings
and environment as the servers) and bulk SQL for volume.

Rows are cloned from one made through the product's own services, so their shape is what
Confirma itself writes; `INSERT … SELECT generate_series` makes a million in seconds.
"""

from __future__ import annotations

import os
import secrets
from decimal import Decimal

_READY = False

SERVICE_PRICE = Decimal("5.00")


def django_setup(env: dict[str, str]) -> None:
    """Configure Django in this process exactly as the stack's servers are."""
    global _READY
    os.environ.update(env)
    os.environ["DJANGO_SETTINGS_MODULE"] = "bench.settings"
    if not _READY:
        import django

        django.setup()
        _READY = True


def use_database(url: str) -> None:
    """Point this process's default connection at another stack's database."""
    from urllib.parse import urlparse

    from django.conf import settings
    from django.db import connections

    connections.close_all()
    settings.DATABASES["default"]["NAME"] = urlparse(url).path.lstrip("/")


def close_connections() -> None:
    from django.db import connections

    connections.close_all()


class World:
    """Services, a kiosk whose printer is the harness's loopback printer, operators."""

    def __init__(self, *, printer_url: str, services: int = 4) -> None:
        from tickets.models import Kiosk, Printer, Service

        self.printer = Printer.objects.create(name="Bench printer", url=printer_url)
        self.kiosk = Kiosk.objects.create(name="Bench kiosk", printer=self.printer)
        letters = "ABCDEFGHIJ"
        self.services = [
            Service.objects.create(
                name=f"Bench service {letters[i]}", prefix=f"B{letters[i]}", price=SERVICE_PRICE
            )
            for i in range(services)
        ]
        self._operators: list[str] = []

    def operator_cookies(self, count: int) -> list[str]:
        """Session cookies of `count` distinct users with the operator role (made once)."""
        from django.conf import settings
        from django.contrib.auth import (
            BACKEND_SESSION_KEY,
            HASH_SESSION_KEY,
            SESSION_KEY,
            get_user_model,
        )
        from django.contrib.auth.models import Group
        from django.contrib.sessions.backends.db import SessionStore

        group = Group.objects.get(name="operator")
        users = get_user_model().objects
        while len(self._operators) < count:
            user = users.create(username=f"bench-operator-{len(self._operators)}")
            user.set_unusable_password()
            user.save(update_fields=["password"])
            user.groups.add(group)
            session = SessionStore()
            session[SESSION_KEY] = str(user.pk)
            session[BACKEND_SESSION_KEY] = "django.contrib.auth.backends.ModelBackend"
            session[HASH_SESSION_KEY] = user.get_session_auth_hash()
            session.create()
            self._operators.append(f"{settings.SESSION_COOKIE_NAME}={session.session_key}")
        return self._operators[:count]

    def ticket_sessions(self, count: int) -> list[str]:
        """`count` pending kiosk ticket sessions, over the services in turn; references."""
        from payments.models import PaymentSession

        template = self._template()
        if count <= 0:
            return []
        service_ids = ",".join(str(s.pk) for s in self.services)
        tag = secrets.token_hex(4)
        insert_select(
            PaymentSession,
            {
                "reference": "x.ref",
                "idempotency_key": f"'bench-{tag}-' || x.g",
                "params": (
                    "jsonb_set(t.params, '{service}',"
                    f" to_jsonb((ARRAY[{service_ids}])[1 + x.g % {len(self.services)}]))"
                ),
                "provider_data": "jsonb_build_object('terminal', true, 'reference', x.ref)",
                "created_at": "now()",
                "expires_at": "now() + interval '6 hours'",
            },
            "FROM payments_paymentsession t, (SELECT g, 'ps_' || "  # noqa: S608
            "substr(md5(random()::text || g::text), 1, 24) AS ref "
            f"FROM generate_series(1, {count}) g) x WHERE t.id = {template.pk} ORDER BY x.g",
        )
        refs = list(
            PaymentSession.objects.filter(idempotency_key__startswith=f"bench-{tag}-")
            .order_by("pk")
            .values_list("reference", flat=True)
        )
        return refs

    def _template(self):
        """One session made by the product's own service (its shape is cloned)."""
        from payments.services import payment_session_create

        return payment_session_create(
            user=None,
            purpose="ticket",
            provider="kiosk",
            idempotency_key="bench-template-" + secrets.token_hex(6),
            params={"service": self.services[0].pk, "kiosk": self.kiosk.pk},
        ).session


def insert_select(model, expressions: dict[str, str], source_sql: str) -> int:
    """INSERT INTO <model's table> (every column but the id) SELECT <expression per
    column, default `t.<column>`> <source_sql>; returns the row count."""
    from django.db import connection

    fields = [f for f in model._meta.concrete_fields if not f.primary_key]
    columns, values = [], []
    for f in fields:
        columns.append(connection.ops.quote_name(f.column))
        values.append(expressions.get(f.name) or expressions.get(f.attname) or f"t.{f.column}")
    unknown = set(expressions) - {f.name for f in fields} - {f.attname for f in fields}
    if unknown:
        raise ValueError(f"unknown fields for {model.__name__}: {sorted(unknown)}")
    # Built from the model's own columns and the harness's constant expressions only.
    sql = (
        f"INSERT INTO {model._meta.db_table} ({', '.join(columns)}) "
        f"SELECT {', '.join(values)} {source_sql}"
    )
    with connection.cursor() as cursor:
        cursor.execute(sql)
        return cursor.rowcount


def growth_load(world: World, *, target: int) -> dict:
    """Bring the payment sessions up to `target` rows of history: 80 % completed kiosk
    tickets (each with its ticket, webhook delivery and audit rows, as Confirma writes
    them), 15 % expired, 5 % cancelled, spread over 90 days."""
    from django.db import connection

    from payments.models import PaymentAudit, PaymentSession, WebhookDelivery
    from tickets.models import Ticket

    have = PaymentSession.objects.count()
    count = max(0, target - have)
    if count == 0:
        return {"sessions": have}
    template = world._template()
    tag = secrets.token_hex(4)
    service = world.services[0].pk
    status = (
        "CASE WHEN g % 20 < 16 THEN 'completed' WHEN g % 20 < 19 THEN 'expired' "
        "ELSE 'cancelled' END"
    )
    created = f"(now() - interval '90 days' + (g::float / {count}) * interval '89 days')"
    done = f"CASE WHEN g % 20 < 16 THEN {created} + interval '40 seconds' END"
    closed = f"CASE WHEN g % 20 >= 16 THEN {created} + interval '1 hour' END"
    insert_select(
        PaymentSession,
        {
            "reference": "'ps_' || substr(md5(random()::text || g::text), 1, 24)",
            "idempotency_key": f"'grow-{tag}-' || g",
            "status": status,
            "provider_payment_id": f"CASE WHEN g % 20 < 16 THEN 'tx_{tag}_' || g ELSE '' END",
            "created_at": created,
            "expires_at": f"{created} + interval '1 hour'",
            "completed_at": done,
            "fulfilled_at": done,
            "closed_at": closed,
            "paid_amount": "CASE WHEN g % 20 < 16 THEN t.amount END",
            "paid_currency": "CASE WHEN g % 20 < 16 THEN t.currency ELSE '' END",
            "fulfilment_attempts": "CASE WHEN g % 20 < 16 THEN 1 ELSE 0 END",
        },
        f"FROM payments_paymentsession t, generate_series(1, {count}) g WHERE t.id = {template.pk}",
    )
    grown = f"s.idempotency_key LIKE 'grow-{tag}-%%' AND s.status = 'completed'"
    tickets = insert_select(
        Ticket,
        {
            "service": str(service),
            "day": "(s.completed_at AT TIME ZONE 'UTC')::date",
            "number": "s.id",
            "status": "'completed'",
            "customer_name": "''",
            "cpf_masked": "''",
            "payment_session": "s.id",
            "desk": "'1'",
            "operator": "NULL",
            "paid_at": "s.completed_at",
            "created_at": "s.completed_at",
            "printed_at": "s.completed_at + interval '1 second'",
            "called_at": "s.completed_at + interval '5 minutes'",
            "started_at": "s.completed_at + interval '6 minutes'",
            "finished_at": "s.completed_at + interval '15 minutes'",
        },
        f"FROM payments_paymentsession s WHERE {grown}",
    )
    deliveries = insert_select(
        WebhookDelivery,
        {
            "provider": "'kiosk'",
            "endpoint": "'kiosk'",
            "received_at": "s.completed_at",
            "remote_addr": "'127.0.0.1'",
            "headers": (
                "jsonb_build_object('content-type', 'application/json', 'webhook-id', "
                "'msg_' || md5(s.reference), 'webhook-timestamp', "
                "extract(epoch from s.completed_at)::bigint::text, 'webhook-signature', "
                "'v1,' || md5(s.reference || 'sig'))"
            ),
            "query_string": "''",
            "body": (
                "convert_to(json_build_object('transaction_id', s.provider_payment_id, "
                "'reference', s.reference, 'status', 'paid', 'amount', s.amount::text, "
                "'currency', s.currency)::text, 'UTF8')"
            ),
            "body_size": "120",
            "signature_valid": "true",
            "event_id": "'msg_' || md5(s.reference)",
            "status": "'processed'",
            "response_status": "200",
            "error": "''",
            "traceback": "''",
            "attempts": "1",
            "next_attempt_at": "NULL",
            "processed_at": "s.completed_at",
            "resolved_at": "NULL",
            "session": "s.id",
            "replay_of": "NULL",
            "claimed_by": "''",
        },
        f"FROM payments_paymentsession s WHERE {grown}",
    )
    audits = insert_select(
        PaymentAudit,
        {
            "session": "s.id",
            "action": "'completed'",
            "from_status": "'pending'",
            "to_status": "'completed'",
            "source": "'webhook'",
            "actor": "NULL",
            "reason": "''",
            "delivery": "NULL",
            "data": "'{}'::jsonb",
            "created_at": "s.completed_at",
        },
        f"FROM payments_paymentsession s WHERE {grown}",
    )
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE")
    return {
        "sessions": PaymentSession.objects.count(),
        "tickets_added": tickets,
        "deliveries_added": deliveries,
        "audits_added": audits,
    }


def expired_pending_load(world: World, *, count: int) -> int:
    """`count` pending sessions whose expiry passed over the last 30 days (a backlog, as
    after the expiry job was off for a while)."""
    from django.db import connection

    from payments.models import PaymentSession

    template = world._template()
    tag = secrets.token_hex(4)
    insert_select(
        PaymentSession,
        {
            "reference": "'ps_' || substr(md5(random()::text || g::text), 1, 24)",
            "idempotency_key": f"'exp-{tag}-' || g",
            "status": "'pending'",
            "created_at": f"now() - interval '30 days' + (g::float / {count}) * interval '30 days'"
            " - interval '2 hours'",
            "expires_at": f"now() - interval '30 days' + (g::float / {count}) * interval '30 days'"
            " - interval '1 minute'",
        },
        f"FROM payments_paymentsession t, generate_series(1, {count}) g WHERE t.id = {template.pk}",
    )
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE payments_paymentsession")
    return count
