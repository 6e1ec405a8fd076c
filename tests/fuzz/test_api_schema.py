"""Schemathesis against the OpenAPI schema the app serves at /api/schema/, in process.

The schema is loaded through the WSGI application (`config.wsgi.application`); every
generated request goes through the whole middleware stack and the real views, on the
test's database connection, one savepoint per example. Two callers: a staff user and a
customer, each with a DRF token.

Checks: no 5xx; the content type and the body of every documented response match the
schema; an undocumented (error) response still has the API's one JSON error shape; the
errors each operation is meant to give are documented, in that shape.

Not covered here: `POST /api/integration/test/` is an async function view, absent from the
schema (drf-spectacular only sees DRF views); it runs a real end-to-end self-test against
PUBLIC_BASE_URL, which has its own tests in tests/tickets/test_selftest.py.
"""

import copy
import json
from urllib.parse import unquote, urlsplit

import pytest
import schemathesis
from django.core import signals
from django.db import close_old_connections, transaction
from django.urls import Resolver404, resolve
from hypothesis import given, settings
from hypothesis import strategies as st
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from config.wsgi import application
from payments.models import PaymentSession, Provider
from tests.factories import CouponFactory, MachineFactory, TokenFactory, UserFactory
from tests.subscriptions.conftest import *  # noqa: F403 - provider fakes, plans, purposes

CONFIG = schemathesis.Config.from_dict({"generation": {"deterministic": True}})
# The schema exactly as /api/schema/ serves it.
SERVED = schemathesis.openapi.from_wsgi("/api/schema/", application, config=CONFIG)


def _patched(raw: dict) -> dict:
    """The served schema with its known mismatches corrected (each one is a strict xfail
    below, so the fuzzing goes on looking for new ones). None at present."""
    return copy.deepcopy(raw)


SCHEMA = schemathesis.openapi.from_dict(_patched(SERVED.raw_schema), config=CONFIG)
SCHEMA.app = application
OPERATIONS = {
    f"{op.method.upper()} {op.path}": op for op in (r.ok() for r in SCHEMA.get_all_operations())
}


def _error_shape(ctx, response, case):
    """A response the schema does not document must at least be the API's JSON error."""
    documented = case.operation.responses.status_codes
    if str(response.status_code) in documented:
        return None
    path = urlsplit(response.request.url).path
    if response.status_code == 404 and _unroutable(path):
        return None  # e.g. a non-integer order id: Django's own 404 page, before any API view
    content_type = response.headers.get("content-type", [""])[0]
    assert content_type.startswith("application/json"), f"error as {content_type!r}"
    body = json.loads(response.content)
    assert set(body) == {"error"} and {"code", "message"} <= set(body["error"]), body
    return True


def _unroutable(path: str) -> bool:
    try:
        resolve(unquote(path))
    except Resolver404:
        return True
    return False


CHECKS = [not_a_server_error, content_type_conformance, response_schema_conformance, _error_shape]


@pytest.fixture
def in_process(db):
    """Requests through the WSGI handler without closing the test's connection at the end
    of each request (Django's test client does the same)."""
    signals.request_started.disconnect(close_old_connections)
    signals.request_finished.disconnect(close_old_connections)
    yield
    signals.request_started.connect(close_old_connections)
    signals.request_finished.connect(close_old_connections)


def _token(user) -> dict:
    return {"Authorization": f"Token {TokenFactory(user=user).key}"}


def _call(case, headers):
    """One request in a savepoint rolled back afterwards: examples do not pile up rows."""
    with transaction.atomic():
        response = case.call(headers=headers)
        transaction.set_rollback(True)
    return response


@pytest.mark.parametrize("role", ["staff", "customer"])
@pytest.mark.parametrize("label", sorted(OPERATIONS))
def test_generated_requests_get_no_5xx_and_documented_answers(label, role, in_process):
    operation = OPERATIONS[label]
    headers = _token(UserFactory(roles=[role]))
    cases = st.one_of(
        operation.as_strategy(GenerationMode.POSITIVE),
        operation.as_strategy(GenerationMode.NEGATIVE),
    )

    @given(case=cases)
    @settings(max_examples=12)
    def run(case):
        case.validate_response(_call(case, headers), checks=CHECKS)

    run()


# --- Payment sessions with bodies that reach the services ------------------------------------

PURPOSES = ["test_purchase", "wallet_topup", "subscription", "machine_session", "ticket", "order"]


@pytest.fixture
def world(in_process, mp_fake, billing, plans, test_purpose):
    customer = UserFactory(roles=["customer"])
    machine = MachineFactory()
    from subscriptions.services.machines import usage_session_start

    usage = usage_session_start(customer=customer, machine_code=machine.code, minutes=30)
    CouponFactory(code="TENOFF", kind="percent", value=10)
    CouponFactory(code="ALLOFF", kind="percent", value=100)
    return {"customer": customer, "usage": usage.pk}


def _bodies(usage_id: int):
    params = st.one_of(
        st.sampled_from(
            [
                {"item": "tea"},
                {"item": "coffee"},
                {"item": "water"},
                {"plan": "basic-uzs"},
                {"plan": "pro-usd"},
                {"plan": 7},
                {"usage_session": usage_id},
                {"usage_session": str(usage_id)},
                {"service": 1, "cpf": "529.982.247-25"},
                {"order": 1},
                {},
            ]
        ),
        st.dictionaries(st.text(max_size=5), st.none() | st.integers() | st.text(max_size=5)),
    )
    amounts = st.one_of(
        st.none(),
        st.sampled_from(["25.00", "0.01", "0", "100000.00", "12.345", "-1", "1e3", "NaN"]),
        st.decimals(min_value=0, max_value=10**6, places=2).map(str),
    )
    return st.fixed_dictionaries(
        {"purpose": st.sampled_from(PURPOSES), "provider": st.sampled_from(Provider.values)},
        optional={
            "amount": amounts,
            "currency": st.sampled_from(["BRL", "USD", "UZS", "brl", "XX1", None]),
            "params": params,
            "coupon": st.sampled_from(["TENOFF", "ALLOFF", "tenoff", "NOPE", "", None]),
            "payer_email": st.sampled_from(["a@example.com", "", "not-an-email"]),
        },
    )


@pytest.mark.parametrize("role", ["staff", "customer"])
def test_payment_session_create_with_meaningful_bodies(role, world):
    """Bodies drawn around the real purposes, providers, coupons and amounts, sent in short
    sequences whose Idempotency-Keys repeat (replays and conflicts), against the fakes."""
    operation = OPERATIONS["POST /api/payment-sessions/"]
    user = world["customer"] if role == "customer" else UserFactory(roles=["staff"])
    auth = _token(user)
    request = st.tuples(
        _bodies(world["usage"]).flatmap(
            lambda body: operation.as_strategy(body=body, media_type="application/json")
        ),
        st.sampled_from(["key-a", "key-b", "", "bad key!"]),
    )

    @given(requests=st.lists(request, min_size=1, max_size=3))
    @settings(max_examples=40)
    def run(requests):
        with transaction.atomic():
            for case, key in requests:
                headers = {**auth, "Idempotency-Key": key}
                response = case.call(headers=headers)
                case.validate_response(response, checks=CHECKS, headers=headers)
            transaction.set_rollback(True)

    run()


def test_payment_session_detail_with_real_references_and_tokens(world):
    from payments.apis import payment_token
    from payments.services import payment_session_create

    operation = OPERATIONS["GET /api/payment-sessions/{reference}/"]
    mine = payment_session_create(
        user=world["customer"],
        purpose="test_purchase",
        provider="kiosk",
        params={"item": "tea"},
        idempotency_key="detail-mine",
    ).session
    anonymous = payment_session_create(
        user=None,
        purpose="test_purchase",
        provider="kiosk",
        params={"item": "coffee"},
        idempotency_key="detail-anon",
    ).session
    references = [mine.reference, anonymous.reference, "ps_unknown", "ps_%E2%80%AE", "x" * 300]
    grants = {mine.reference: payment_token(mine), anonymous.reference: payment_token(anonymous)}
    tokens = [*grants.values(), "garbage", ""]
    who = {
        "owner": _token(world["customer"]),
        "other": _token(UserFactory(roles=["customer"])),
        "staff": _token(UserFactory(roles=["staff"])),
        "anonymous": {},
    }
    cases = st.builds(
        lambda ref, token: operation.as_strategy(
            path_parameters={"reference": ref}, query={"token": token} if token else None
        ),
        st.sampled_from(references),
        st.sampled_from(tokens),
    ).flatmap(lambda strategy: strategy)

    @given(case=cases, caller=st.sampled_from(sorted(who)))
    @settings(max_examples=40)
    def run(case, caller):
        response = _call(case, who[caller])
        case.validate_response(response, checks=CHECKS)
        reference = case.path_parameters["reference"]
        token = (case.query or {}).get("token")
        # Its owner, staff, or whoever holds its payment token; nobody else, not even
        # with another session's token.
        visible = reference in grants and (
            caller == "staff"
            or (caller == "owner" and reference == mine.reference)
            or token == grants[reference]
        )
        assert response.status_code == (200 if visible else 404), (caller, reference, token)
        if visible:
            assert response.json()["reference"] == reference

    run()
    assert PaymentSession.objects.filter(pk__in=[mine.pk, anonymous.pk]).count() == 2


# --- Error responses are documented ---------------------------------------------------------

ERROR_CASES = [
    ("GET /api/integration/status/", "customer", {}, 403),
    ("GET /api/payment-sessions/{reference}/", "customer", {"reference": "ps_unknown"}, 404),
    ("POST /api/payment-sessions/", "customer", {"body": {"purpose": "x"}}, 400),
    ("POST /api/orders/{order_id}/verify/", "customer", {"order_id": 999999}, 403),
    ("POST /api/orders/{order_id}/verify/", "staff", {"order_id": 999999}, 404),
    ("POST /api/orders/{order_id}/reject/", "staff", {"order_id": 999999, "body": {}}, 400),
    ("POST /api/orders/{order_id}/proof/", "staff", {"order_id": 999999, "body": {}}, 400),
]


@pytest.mark.parametrize(
    "label, role, values, expected", ERROR_CASES, ids=[f"{c[0]} {c[3]}" for c in ERROR_CASES]
)
def test_error_responses_are_documented(label, role, values, expected, in_process):
    operation = OPERATIONS[label]
    values = dict(values)
    body = values.pop("body", None)
    kwargs = {"path_parameters": values} if values else {}
    if body is not None:
        kwargs["body"] = body
        kwargs["media_type"] = "multipart/form-data" if "proof" in label else "application/json"
    case = operation.Case(**kwargs)
    headers = {**_token(UserFactory(roles=[role])), "Idempotency-Key": "documented-errors"}
    response = _call(case, headers)
    assert response.status_code == expected  # the request does fail as intended
    case.validate_response(response, checks=[status_code_conformance, content_type_conformance])


def test_payment_session_without_coupon_matches_the_served_schema(world):
    from payments.services import payment_session_create

    session = payment_session_create(
        user=world["customer"],
        purpose="test_purchase",
        provider="kiosk",
        params={"item": "tea"},
        idempotency_key="no-coupon",
    ).session
    served = SERVED["/api/payment-sessions/{reference}/"]["GET"]
    case = served.Case(path_parameters={"reference": session.reference})
    response = _call(case, _token(world["customer"]))
    assert response.status_code == 200 and response.json()["coupon"] is None
    case.validate_response(response, checks=[response_schema_conformance])


def test_payment_session_detail_with_a_nul_in_the_reference_is_a_404(in_process):
    case = OPERATIONS["GET /api/payment-sessions/{reference}/"].Case(
        path_parameters={"reference": "ps_%00"}
    )
    response = _call(case, _token(UserFactory(roles=["customer"])))
    case.validate_response(response, checks=[not_a_server_error])
    assert response.status_code == 404
