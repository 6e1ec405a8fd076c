"""Who may do what: every principal × every URL pattern and WebSocket audience.

The table is `tests/permissions_matrix.py`. Here: one shared world (built once per module
inside a transaction that is rolled back at the end; each row runs in a savepoint of its
own), the resolver walk that refuses URL patterns the table does not decide, the HTTP rows,
the webhooks (signature only: a staff session is no authority), and the WebSocket rows.
"""

import json
import re
import uuid
from dataclasses import dataclass, field
from decimal import Decimal
from http.cookies import SimpleCookie
from urllib.parse import quote, urlencode

import pytest
from asgiref.sync import async_to_sync
from channels.db import database_sync_to_async
from channels.layers import get_channel_layer
from django.conf import settings
from django.contrib.auth.views import redirect_to_login
from django.core import signing
from django.db import transaction
from django.test import Client, override_settings
from django.urls import URLPattern, URLResolver, get_resolver

from tests import permissions_matrix as matrix
from tests.factories import (
    KioskFactory,
    MachineFactory,
    PlanFactory,
    ServiceFactory,
    UserFactory,
    WorkerHeartbeatFactory,
)
from tests.notifications.wsclient import ws_connect
from tests.orders.conftest import make_order

pytestmark = pytest.mark.django_db

CLICK_PAY_URL = "https://click.example/services/pay"


# --- The world -------------------------------------------------------------------------------


@dataclass
class World:
    users: dict = field(default_factory=dict)
    sessions: dict = field(default_factory=dict)  # user principal -> session key
    tokens: dict = field(default_factory=dict)
    fmt: dict = field(default_factory=dict)  # values the matrix's paths are formatted with

    def ws_audiences(self, principal: str) -> set[str] | None:
        names = matrix.WS_AUDIENCES[principal]
        return None if names is None else {n.format(**self.fmt) for n in names}


def _build_world() -> World:
    from notifications.tokens import audience_token_create
    from orders.models import OrderStatus, PaymentProof
    from orders.services import proof_submit
    from payments.apis import payment_token
    from payments.models import AuditSource
    from payments.services import payment_session_create
    from payments.services.confirmation import Evidence, payment_confirm
    from subscriptions.services.machines import machine_device_token_rotate
    from tickets.services import kiosk_token_rotate

    w = World()
    w.users = {
        "customer": UserFactory(),
        "other_customer": UserFactory(),
        "waiter": UserFactory(roles=["waiter"]),
        "other_waiter": UserFactory(roles=["waiter"]),
        "kitchen": UserFactory(roles=["kitchen"]),
        "cashier": UserFactory(roles=["cashier"]),
        "operator": UserFactory(roles=["operator"]),
        "staff": UserFactory(roles=["staff"], is_staff=True),
        "superuser": UserFactory(is_staff=True, is_superuser=True),
    }
    w.fmt = {name: user.pk for name, user in w.users.items()}
    for name, user in w.users.items():
        login = Client()
        login.force_login(user)
        w.sessions[name] = login.cookies[settings.SESSION_COOKIE_NAME].value
    WorkerHeartbeatFactory(worker_id="permissions", hostname="test", pid=1)

    machine, other_machine = MachineFactory(), MachineFactory()
    w.fmt |= {
        "machine": machine.pk,
        "other_machine": other_machine.pk,
        "machine_code": machine.code,
    }

    plan = PlanFactory(
        code="perm-basic", name="Basic", tier="basic", price=Decimal("49000.00"), currency="UZS"
    )

    def subscription_session(user):
        return payment_session_create(
            user=user,
            purpose="subscription",
            provider="click",
            params={"plan": plan.code},
            idempotency_key=uuid.uuid4().hex,
        ).session

    service = ServiceFactory(name="Atendimento", prefix="PM")
    kiosk = KioskFactory(name="Totem perm 1")
    other_kiosk = KioskFactory(name="Totem perm 2")

    def kiosk_session(kiosk_id=None):
        params = {"service": service.pk} | ({"kiosk": kiosk_id} if kiosk_id else {})
        return payment_session_create(
            user=None,
            purpose="ticket",
            provider="kiosk",
            params=params,
            idempotency_key=uuid.uuid4().hex,
        ).session

    kiosk_payment = kiosk_session(kiosk.pk)
    paid = kiosk_session()
    payment_confirm(
        reference=paid.reference,
        amount=paid.amount,
        currency=paid.currency,
        evidence=Evidence(source=AuditSource.SYSTEM, reason="permission matrix"),
    )

    waiter, other_waiter = w.users["waiter"], w.users["other_waiter"]
    orders = {
        "pending_order": make_order(waiter, status=OrderStatus.PENDING),
        "ready_order": make_order(waiter, status=OrderStatus.READY),
        "other_ready_order": make_order(other_waiter, status=OrderStatus.READY),
        "delivered_order": make_order(waiter),
        "other_delivered_order": make_order(other_waiter),
        "awaiting_order": make_order(waiter),
        "other_awaiting_order": make_order(other_waiter),
    }
    for key, owner in (("awaiting_order", waiter), ("other_awaiting_order", other_waiter)):
        proof_submit(
            order_id=orders[key].pk, upload=matrix.png_upload(), method="transfer", actor=owner
        )
    w.fmt |= {key: order.pk for key, order in orders.items()}

    w.fmt |= {
        "plan": plan.code,
        "customer_ref": subscription_session(w.users["customer"]).reference,
        "other_ref": subscription_session(w.users["other_customer"]).reference,
        "kiosk_ref": kiosk_payment.reference,
        "other_kiosk_ref": kiosk_session(other_kiosk.pk).reference,
        "service": service.pk,
        "ticket": paid.ticket.pk,
        "proof": PaymentProof.objects.get(order=orders["awaiting_order"]).pk,
        "other_proof": PaymentProof.objects.get(order=orders["other_awaiting_order"]).pk,
        "click_pay_url": CLICK_PAY_URL,
    }
    w.tokens = {
        "machine_token": machine_device_token_rotate(machine=machine),
        "other_machine_token": machine_device_token_rotate(machine=other_machine),
        "kiosk_token": kiosk_token_rotate(kiosk=kiosk),
        "display_token": audience_token_create(audiences=[f"display:{settings.TICKET_DISPLAY}"]),
        "payment_token": payment_token(kiosk_payment),
        # Signed with the real key and salt, but granting what only a login may.
        "role_claim_token": signing.dumps(
            {"a": ["role:staff", f"user:{w.users['staff'].pk}"], "e": 2**40},
            salt="confirma.notifications.audience-token",
        ),
    }
    w.fmt["kiosk_token"] = w.tokens["kiosk_token"]
    return w


@pytest.fixture(scope="module")
def world(django_db_setup, django_db_blocker, tmp_path_factory):
    """Built once; every row runs in a savepoint inside this transaction, rolled back."""
    overrides = override_settings(
        PASSWORD_HASHERS=["django.contrib.auth.hashers.MD5PasswordHasher"],
        PRIVATE_MEDIA_ROOT=tmp_path_factory.mktemp("private"),
        CLICK_SERVICE_ID="31415",
        CLICK_MERCHANT_ID="2718",
        CLICK_SECRET_KEY="click-secret-for-permissions",
        CLICK_PAY_URL=CLICK_PAY_URL,
        MERCADOPAGO_WEBHOOK_SECRET="mp-secret-for-permissions",
        NOWPAYMENTS_IPN_SECRET="np-secret-for-permissions",
        COINBASE_COMMERCE_WEBHOOK_SECRET="cb-secret-for-permissions",
        KIOSK_WEBHOOK_SECRET="whsec_a2lvc2stc2VjcmV0LWZvci1wZXJtaXNzaW9ucyE=",
        FAKE_PROVIDERS=False,
        PRINTER_URL="dummy:",
        WORKER_HEARTBEAT_MAX_AGE=3600,
        EVENTS_POLL_INTERVAL=0,
    )
    overrides.enable()
    # Marked as Django's TestCase marks its class-wide transaction: the services that own
    # their transaction (durable atomic blocks) may run directly inside it.
    world_transaction = transaction.atomic()
    world_transaction._from_testcase = True
    try:
        with django_db_blocker.unblock(), world_transaction:
            try:
                yield _build_world()
            finally:
                transaction.set_rollback(True)
    finally:
        overrides.disable()


@pytest.fixture(scope="module")
def http():
    """One test client for the module: building the middleware chain (WhiteNoise scans
    the static files) costs more than most requests."""
    return Client()


@pytest.fixture
def client(http):
    http.cookies = SimpleCookie()
    return http


# --- Every URL pattern has a decision ------------------------------------------------------------


def _routes(patterns, prefix: str = ""):
    for pattern in patterns:
        route = prefix + str(pattern.pattern)
        if isinstance(pattern, URLResolver):
            yield from _routes(pattern.url_patterns, route)
        elif isinstance(pattern, URLPattern):
            yield route


def test_every_url_pattern_has_a_decision():
    from django.contrib import admin

    # The admin's own pages: its index has rows, the rest share the index's check.
    admin_pages = {"admin/" + r for r in _routes(admin.site.get_urls())} - {"admin/"}
    routes = {
        r
        for r in _routes(get_resolver().url_patterns)
        if r not in admin_pages and not r.startswith(matrix.EXCLUDED_PREFIXES)
    }
    decided = {case.route for case in matrix.CASES} | set(matrix.WEBHOOK_ROUTES)
    assert sorted(routes - decided) == [], "URL patterns with no row in permissions_matrix.py"
    assert sorted(decided - routes) == [], "rows for URL patterns that no longer exist"


def test_known_bugs_name_real_rows():
    rows = {(c.route, c.variant, p) for c in matrix.CASES for p in matrix.PRINCIPALS}
    assert sorted(set(matrix.KNOWN_BUGS) - rows) == []


def test_every_websocket_route_has_a_decision():
    from notifications.routing import websocket_urlpatterns

    assert set(_routes(websocket_urlpatterns)) == {matrix.WS_ROUTE}


# --- HTTP rows ---------------------------------------------------------------------------------


def _short(route: str) -> str:
    return "/" + re.sub(r"<\w+:(\w+)>", r"<\1>", route)


def _marks(case: matrix.Case, principal: str) -> list:
    reason = matrix.KNOWN_BUGS.get((case.route, case.variant, principal))
    return [pytest.mark.xfail(strict=True, reason=reason)] if reason else []


ROWS = [
    pytest.param(
        case,
        principal,
        id=f"{principal}-{case.method}-{_short(case.route)}"
        + (f"[{case.variant}]" if case.variant else ""),
        marks=_marks(case, principal),
    )
    for case in matrix.CASES
    for principal in matrix.PRINCIPALS
]


def _request(client, case: matrix.Case, principal: str, world: World):
    path = case.path.format(**world.fmt)
    if principal in matrix.TOKENS:
        joiner = "&" if "?" in path else "?"
        path += f"{joiner}token={quote(world.tokens[principal], safe='')}"
    elif principal in matrix.USERS:
        client.cookies[settings.SESSION_COOKIE_NAME] = world.sessions[principal]
    headers = case.headers(world) if case.headers else {}
    if case.method == "GET":
        return client.get(path, headers=headers)
    data = case.data(world) if case.data else {}
    if case.body == "json":
        return client.post(
            path, data=json.dumps(data), content_type="application/json", headers=headers
        )
    return client.post(path, data=data, headers=headers)


def _prepare(case: matrix.Case, request) -> None:
    if case.route == "healthz":
        request.getfixturevalue("memory_layer")
    if case.route == "api/integration/test/":
        # The self-test drives a whole kiosk payment end to end; only its gate counts here.
        monkeypatch = request.getfixturevalue("monkeypatch")
        monkeypatch.setattr("tickets.apis._run_self_test", lambda base_url: {"ok": True})


@pytest.mark.parametrize(("case", "principal"), ROWS)
def test_http(case, principal, world, client, request):
    _prepare(case, request)
    expect = case.expect[principal]
    response = _request(client, case, principal, world)

    location = response.get("Location")
    assert (response.status_code, location if response.status_code == 302 else None) == (
        expect.status,
        _expected_location(expect, response, world),
    ), f"expected {expect}"
    if case.effect is not None:
        assert case.effect(world) is expect.allowed, f"effect {case.effect.__name__}"
    if case.check is not None and expect.allowed:
        case.check(response, world, principal)


def _expected_location(expect: matrix.Expect, response, world: World) -> str | None:
    if expect.status != 302:
        return None
    if expect.location in (matrix.LOGIN_PAGE, matrix.ADMIN_LOGIN_PAGE):
        login = "/admin/login/" if expect.location == matrix.ADMIN_LOGIN_PAGE else None
        return redirect_to_login(response.wsgi_request.get_full_path(), login)["Location"]
    wanted = expect.location.format(**world.fmt)
    actual = response["Location"]
    if wanted.endswith("*") and actual.startswith(wanted[:-1]):
        return actual
    return wanted


# --- A session is no authority for a cross-site POST -------------------------------------------

CSRF_ROWS = [
    pytest.param(case, id=f"superuser-{case.method}-{_short(case.route)}-no-csrf-token")
    for case in matrix.CASES
    if case.method == "POST" and not case.variant.startswith("other")
]


@pytest.fixture(scope="module")
def csrf_http():
    return Client(enforce_csrf_checks=True)


@pytest.mark.parametrize("case", CSRF_ROWS)
def test_session_post_without_csrf_token_is_refused(case, world, csrf_http, request):
    """The superuser may use every one of these; without the CSRF token, nobody may."""
    _prepare(case, request)
    csrf_http.cookies = SimpleCookie()
    response = _request(csrf_http, case, "superuser", world)
    assert response.status_code == 403
    if case.effect is not None:
        assert case.effect(world) is False


# --- Webhooks: the signature is the only authority ---------------------------------------------


def _webhook_request(route: str, world: World) -> tuple[str, dict]:
    """An unsigned notification that, if believed, would complete a real open session."""
    customer_ref, kiosk_ref = world.fmt["customer_ref"], world.fmt["kiosk_ref"]
    if route.startswith("webhooks/click/"):
        fields = {
            "click_trans_id": "900001",
            "service_id": settings.CLICK_SERVICE_ID,
            "click_paydoc_id": "1",
            "merchant_trans_id": customer_ref,
            "merchant_prepare_id": "1",
            "amount": "49000",
            "action": "1" if route.endswith("complete/") else "0",
            "error": "0",
            "error_note": "Success",
            "sign_time": "2025-01-01 10:00:00",
            "sign_string": "0" * 32,  # not Click's MD5 over the fields and our secret
        }
        return "application/x-www-form-urlencoded", fields
    bodies = {
        "webhooks/mercadopago/": {"type": "payment", "data": {"id": "123456"}},
        "webhooks/kiosk/": {
            "reference": kiosk_ref,
            "status": "approved",
            "amount": "5.00",
            "currency": "BRL",
            "transaction_id": "t-1",
        },
        "webhooks/nowpayments/": {
            "payment_id": 1,
            "payment_status": "finished",
            "order_id": customer_ref,
            "price_amount": 49000,
            "price_currency": "uzs",
        },
        "webhooks/coinbase/": {
            "event": {
                "id": str(uuid.uuid4()),
                "type": "charge:confirmed",
                "data": {"metadata": {"reference": customer_ref}},
            }
        },
    }
    return "application/json", bodies[route]


@pytest.mark.parametrize(
    "route", [pytest.param(r, id=f"staff-POST-/{r}-unsigned") for r in matrix.WEBHOOK_ROUTES]
)
def test_webhook_ignores_the_session(route, world, client):
    """A staff session is no authority: the unsigned request is refused, counted as a
    refusal (the session cookie not kept in its sample), never stored as a delivery, and
    changes nothing."""
    from notifications.models import Event
    from payments.models import PaymentAudit, PaymentSession, WebhookDelivery, WebhookRefusal

    client.force_login(world.users["staff"])
    session_key = client.session.session_key
    assert session_key
    content_type, body = _webhook_request(route, world)
    path = "/" + route + ("?data.id=123456&type=payment" if "mercadopago" in route else "")
    deliveries, audits, events = (
        WebhookDelivery.objects.count(),
        PaymentAudit.objects.count(),
        Event.objects.count(),
    )
    refusals = dict(WebhookRefusal.objects.values_list("pk", "count"))
    if content_type == "application/json":
        response = client.post(path, data=json.dumps(body), content_type=content_type)
    else:
        response = client.post(path, data=urlencode(body), content_type=content_type)

    if route.startswith("webhooks/click/"):
        # Click's protocol answers HTTP 200 always; -1 is "SIGN CHECK FAILED".
        assert (response.status_code, response.json()["error"]) == (200, -1)
    else:
        assert response.status_code == 401
    assert WebhookDelivery.objects.count() == deliveries, "a refused request is not stored"
    counts = dict(WebhookRefusal.objects.values_list("pk", "count"))
    assert sum(counts.values()) == sum(refusals.values()) + 1, "counted once"
    (pk,) = [pk for pk, count in counts.items() if count != refusals.get(pk, 0)]
    refusal = WebhookRefusal.objects.get(pk=pk)
    provider = route.removeprefix("webhooks/").split("/")[0]
    assert (refusal.provider, refusal.reason) == (provider, "invalid signature")
    assert session_key not in refusal.headers_head
    assert (PaymentAudit.objects.count(), Event.objects.count()) == (audits, events)
    statuses = PaymentSession.objects.filter(
        reference__in=[world.fmt["customer_ref"], world.fmt["kiosk_ref"]]
    ).values_list("status", flat=True)
    assert set(statuses) == {"pending"}


# --- WebSocket audiences -----------------------------------------------------------------------

WS_ROWS = [
    pytest.param(
        principal if principal in matrix.USERS else None,
        principal if principal in matrix.TOKENS else None,
        audiences,
        id=f"{principal}-WS-/ws/events/",
    )
    for principal, audiences in matrix.WS_AUDIENCES.items()
] + [
    pytest.param(user, token, audiences, id=f"{name}-WS-/ws/events/")
    for name, user, token, audiences in matrix.WS_EXTRA
]


@pytest.mark.parametrize(("user", "token", "audiences"), WS_ROWS)
def test_websocket(user, token, audiences, world, memory_layer, monkeypatch):
    """The connection gets exactly its audiences: the missed events replayed after
    `since=`, and live ones; an event for any other audience never reaches it."""
    # The consumer's database calls run on this thread (async_to_sync below), inside the
    # test's transaction; channels would otherwise close that connection around each.
    monkeypatch.setattr("channels.db.close_old_connections", lambda: None)
    from notifications.audiences import audience_group
    from notifications.selectors import event_latest_id
    from notifications.services import PUSH_MESSAGE_TYPE, event_publish

    expected = None if audiences is None else {a.format(**world.fmt) for a in audiences}
    probes = [a.format(**world.fmt) for a in matrix.WS_PROBE_AUDIENCES]
    for name in expected or ():
        assert name in probes, f"{name} is never probed"
    # Not granted first: a leak would be among the frames read before the granted ones.
    probes.sort(key=lambda a: a in (expected or ()))

    def publish(phase: str) -> list:
        return [
            event_publish(audience=a, type=f"probe.{phase}", payload={"audience": a})[0]
            for a in probes
        ]

    since = event_latest_id()
    publish("missed")

    async def scenario():
        ws, connected, code = await ws_connect(
            user=world.users[user] if user else None,
            token=world.tokens[token] if token else None,
            since=since,
        )
        if expected is None:
            assert (connected, code) == (False, 4401)
            return
        assert connected
        replayed = [await ws.receive_json_from(timeout=3) for _ in expected]
        assert {f["payload"]["audience"] for f in replayed} == expected
        assert {f["type"] for f in replayed} == {"probe.missed"}
        assert await ws.receive_nothing(timeout=0.05)

        layer = get_channel_layer()
        for event in await database_sync_to_async(publish)("live"):
            # What event_publish's on-commit push sends (the test never commits).
            await layer.group_send(
                audience_group(event.audience),
                {"type": PUSH_MESSAGE_TYPE, "frame": event.as_frame()},
            )
        live = [await ws.receive_json_from(timeout=3) for _ in expected]
        assert {f["payload"]["audience"] for f in live} == expected
        assert {f["type"] for f in live} == {"probe.live"}
        assert await ws.receive_nothing(timeout=0.1)
        await ws.disconnect()

    async_to_sync(scenario)()
