"""Bad input on every webhook URL: answered with a 4xx (Click: HTTP 200 and one of its own
negative error codes), logged as one WebhookDelivery, and nothing else changes.

Real sessions exist for every provider, and bad requests name their references, so "nothing
changed" means something: no payment session moves, nothing is fulfilled.
"""

import json
import time
import uuid
from datetime import UTC, datetime
from urllib.parse import urlencode

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from standardwebhooks.webhooks import Webhook

from payments.fakes import billing as fake_billing
from payments.models import (
    DeliveryStatus,
    LedgerEntry,
    PaymentAudit,
    PaymentSession,
    WebhookDelivery,
)
from payments.services import payment_session_create
from tests.fuzz.test_state_machines import PAYMENT_MAY_BECOME
from tests.payments.conftest import KIOSK_SECRET
from tests.subscriptions.conftest import *  # noqa: F403 - provider fakes and secrets
from tests.subscriptions.conftest import CB_SECRET, NP_SECRET, checkout

MAX_BODY = 2048


@pytest.fixture
def sessions(settings, mp_fake, kiosk_secret, billing, plans, customer, test_purpose):
    """One open session per provider, and a small body cap."""
    settings.WEBHOOK_MAX_BODY_BYTES = MAX_BODY

    def purchase(provider):
        return payment_session_create(
            user=None,
            purpose="test_purchase",
            provider=provider,
            params={"item": "tea"},
            idempotency_key=f"fuzz-webhook-{provider}",
        ).session

    return {
        "kiosk": purchase("kiosk"),
        "mercadopago": purchase("mercadopago"),
        "click": checkout(customer, plans["uzs"], "click"),
        "nowpayments": checkout(customer, plans["usd"], "nowpayments"),
        "coinbase": checkout(customer, plans["usd"], "coinbase"),
    }


def _snapshot():
    from subscriptions.models import SubscriptionEvent

    return (
        list(
            PaymentSession.objects.order_by("pk").values_list(
                "pk", "status", "provider_payment_id", "completed_at", "fulfilled_at"
            )
        ),
        PaymentAudit.objects.count(),
        LedgerEntry.objects.count(),
        SubscriptionEvent.objects.count(),
    )


# --- The endpoints, and a body of each one's real shape ------------------------------------

ENDPOINTS = {
    "mercadopago": ("/webhooks/mercadopago/", "mercadopago"),
    "kiosk": ("/webhooks/kiosk/", "kiosk"),
    "click_prepare": ("/webhooks/click/prepare/", "click/prepare"),
    "click_complete": ("/webhooks/click/complete/", "click/complete"),
    "nowpayments": ("/webhooks/nowpayments/", "nowpayments"),
    "coinbase": ("/webhooks/coinbase/", "coinbase"),
}
FORM = "application/x-www-form-urlencoded"


def _provider(name: str) -> str:
    return "click" if name.startswith("click") else name


def _is_click(name: str) -> bool:
    return name.startswith("click")


def _fields(name: str, session, text: str = "") -> dict:
    """The payload's fields, `text` slipped into the reference and a free-text field."""
    reference = session.reference + text
    if _is_click(name):
        fields = {
            "click_trans_id": "900001",
            "service_id": "31415",
            "click_paydoc_id": "1",
            "merchant_trans_id": reference,
            "amount": "49000",
            "action": "1" if name == "click_complete" else "0",
            "error": "0",
            "error_note": "Success" + text,
            "sign_time": "2026-01-01 10:00:00",
            "sign_string": "0" * 32,
        }
        if name == "click_complete":
            fields["merchant_prepare_id"] = str(session.pk)
        return fields
    if name == "mercadopago":
        return {
            "id": 1,
            "type": "payment",
            "action": "payment.updated" + text,
            "data": {"id": "123" + text},
        }
    if name == "kiosk":
        return {
            "transaction_id": "tx_1",
            "reference": reference,
            "status": "paid",
            "amount": "10.00",
            "currency": "BRL",
        }
    if name == "nowpayments":
        return {
            "payment_id": 5077125051,
            "payment_status": "finished",
            "order_id": reference,
            "price_amount": 9.99,
            "price_currency": "usd",
            "order_description": "Pro" + text,
        }
    return {
        "id": "evt-1",
        "event": {
            "id": "evt-1",
            "type": "charge:confirmed",
            "data": {
                "id": "charge-1",
                "code": "ABC",
                "metadata": {"reference": reference},
                "pricing": {"local": {"amount": "9.99", "currency": "USD"}},
            },
        },
    }


def _encode(name: str, fields: dict) -> tuple[bytes, str]:
    if _is_click(name):
        return urlencode(fields).encode(), FORM
    return json.dumps(fields, ensure_ascii=False).encode(), "application/json"


def _wrong_signatures(name: str) -> dict:
    """Signature headers present but wrong (Click signs inside the form)."""
    now = int(time.time())
    if name == "mercadopago":
        return {"x-signature": f"ts={now},v1={'0' * 64}", "x-request-id": "req-1"}
    if name == "kiosk":
        return {
            "webhook-id": "msg_1",
            "webhook-timestamp": str(now),
            "webhook-signature": "v1," + "A" * 43 + "=",
        }
    if name == "nowpayments":
        return {"x-nowpayments-sig": "0" * 128}
    if name == "coinbase":
        return {"x-cc-webhook-signature": "0" * 64}
    return {}


def _duplicated_signatures(name: str) -> dict:
    """The header sent twice, as a server joins repeated headers (", ")."""
    now = int(time.time())
    if name == "mercadopago":
        return {
            "x-signature": f"ts={now},v1={'0' * 64}, ts={now},v1={'1' * 64}",
            "x-request-id": "req-1, req-2",
        }
    if name == "kiosk":
        return {
            "webhook-id": "msg_1, msg_2",
            "webhook-timestamp": f"{now}, {now}",
            "webhook-signature": "v1," + "A" * 43 + "=, v1," + "B" * 43 + "=",
        }
    if name == "nowpayments":
        return {"x-nowpayments-sig": "0" * 128 + ", " + "1" * 128}
    if name == "coinbase":
        return {"x-cc-webhook-signature": "0" * 64 + ", " + "1" * 64}
    return {}


def _post(client, name, body: bytes, content_type: str, headers: dict, *, method="post"):
    url, _ = ENDPOINTS[name]
    if name == "mercadopago":
        url += "?" + urlencode({"data.id": "123", "type": "payment"})
    send = getattr(client, method)
    if method == "get":
        return send(url, headers=headers)
    return send(url, data=body, content_type=content_type, headers=headers)


def _check_refused(name, response, before, deliveries_before, *, expect=None):
    """A 4xx (Click: 200 and a negative code), one delivery logged, nothing else changed."""
    if _is_click(name) and expect is None:
        assert response.status_code == 200, response.content
        answer = response.json()
        assert isinstance(answer["error"], int) and answer["error"] < 0, answer
    else:
        assert 400 <= response.status_code < 500, (response.status_code, response.content)
        if expect is not None:
            assert response.status_code == expect
    new = WebhookDelivery.objects.filter(pk__gt=deliveries_before)
    assert new.count() == 1, "each request is logged once"
    delivery = new.get()
    endpoint = ENDPOINTS[name][1]
    assert delivery.provider == _provider(name) and delivery.endpoint == endpoint
    assert delivery.response_status == response.status_code
    assert delivery.status in (DeliveryStatus.REJECTED, DeliveryStatus.IGNORED), delivery.status
    assert delivery.signature_valid is not True
    assert delivery.processed_at is not None
    assert _snapshot() == before, "a refused request changed something"
    return delivery


def _last_delivery_id() -> int:
    return WebhookDelivery.objects.order_by("-pk").values_list("pk", flat=True).first() or 0


CATEGORIES = [
    "malformed",
    "wrong_content_type",
    "huge",
    "nul",
    "nul_byte",
    "lone_surrogate",
    "rtl",
    "overlong_utf8",
    "missing_signature",
    "duplicated_signature",
]


def _bad_request(name: str, session, category: str) -> tuple[bytes, str, dict]:
    headers = _wrong_signatures(name)
    if category == "malformed":
        body = b"%%%&&=\xff" if _is_click(name) else b'{"id": 1, "data": {"id": '
        return body, FORM if _is_click(name) else "application/json", headers
    if category == "wrong_content_type":
        body, content_type = _encode(name, _fields(name, session))
        if _is_click(name):
            return json.dumps(_fields(name, session)).encode(), "application/json", headers
        return body, "text/plain", headers
    if category == "huge":
        fields = _fields(name, session)
        padding = "x" * (MAX_BODY + 10)
        fields["error_note" if _is_click(name) else "padding"] = padding
        return (*_encode(name, fields), headers)
    tricks = {
        "nul": "\x00",
        "lone_surrogate": "\ud800",
        "rtl": "\u202e\u200f\u2066",
    }
    if category in tricks:
        fields = _fields(name, session, tricks[category])
        if _is_click(name):
            return urlencode(fields, errors="surrogatepass").encode(), FORM, headers
        text = json.dumps(fields, ensure_ascii=True)  # lone surrogates escaped, as JSON allows
        return text.encode(), "application/json", headers
    raw_bytes = {"overlong_utf8": b"\xc0\xaf\xe0\x80\xaf", "nul_byte": b"\x00"}
    if category in raw_bytes:
        body, content_type = _encode(name, _fields(name, session, "MARK"))
        return body.replace(b"MARK", raw_bytes[category]), content_type, headers
    if category == "missing_signature":
        fields = _fields(name, session)
        fields.pop("sign_string", None)
        return (*_encode(name, fields), {})
    assert category == "duplicated_signature"
    if _is_click(name):
        body, content_type = _encode(name, _fields(name, session))
        return body + b"&sign_string=" + b"1" * 32, content_type, {}
    return (*_encode(name, _fields(name, session)), _duplicated_signatures(name))


# (endpoint, category) pairs known to answer 5xx, each kept as a strict xfail with its reason.
KNOWN_5XX: dict[tuple[str, str], str] = {}


def _cases():
    for name in ENDPOINTS:
        for category in CATEGORIES:
            marks = []
            if (name, category) in KNOWN_5XX:
                marks.append(
                    pytest.mark.xfail(
                        strict=True, raises=AssertionError, reason=KNOWN_5XX[name, category]
                    )
                )
            yield pytest.param(name, category, marks=marks, id=f"{name}-{category}")


@pytest.mark.django_db
@pytest.mark.parametrize("name, category", list(_cases()))
def test_bad_input_is_refused_logged_and_changes_nothing(client, sessions, name, category):
    session = sessions[_provider(name)]
    body, content_type, headers = _bad_request(name, session, category)
    before, last = _snapshot(), _last_delivery_id()
    response = _post(client, name, body, content_type, headers)
    delivery = _check_refused(
        name, response, before, last, expect=413 if category == "huge" else None
    )
    assert bytes(delivery.body) == body[:MAX_BODY]
    assert delivery.body_size == len(body)


@pytest.mark.django_db
@pytest.mark.parametrize("name", list(ENDPOINTS))
def test_get_instead_of_post_is_refused(client, sessions, name):
    before, last = _snapshot(), _last_delivery_id()
    response = _post(client, name, b"", "", {}, method="get")
    expect = None if _is_click(name) else 405
    _check_refused(name, response, before, last, expect=expect)


# --- Hypothesis: anything at all, posted anywhere ------------------------------------------

tricky_text = st.text(
    st.one_of(
        st.characters(codec="utf-8", exclude_categories=["Cs"]),
        st.sampled_from(["\x00", "\u202e", "\u200f", "\ufeff", "\u0301", "\U0001f600", "\\"]),
    ),
    max_size=20,
)
json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | tricky_text,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(tricky_text, inner, max_size=4),
    max_leaves=10,
)
bodies = st.one_of(
    st.binary(max_size=300),
    json_values.map(lambda v: json.dumps(v, ensure_ascii=False).encode("utf-8")),
    json_values.map(lambda v: json.dumps(v).encode()),  # escaped, as Python writes it
    st.dictionaries(tricky_text, tricky_text, max_size=8).map(
        lambda d: urlencode(d, errors="surrogatepass").encode()
    ),
    st.binary(min_size=MAX_BODY + 1, max_size=MAX_BODY + 50),
)
header_values = st.one_of(
    st.text(st.characters(min_codepoint=0x20, max_codepoint=0x7E), max_size=80),
    st.sampled_from(["", "v1,", "ts=,v1=", "v1,AAAA", "ts=1,v1=00", "0" * 128]),
)
signature_headers = st.dictionaries(
    st.sampled_from(
        [
            "x-signature",
            "x-request-id",
            "webhook-id",
            "webhook-timestamp",
            "webhook-signature",
            "x-nowpayments-sig",
            "x-cc-webhook-signature",
        ]
    ),
    header_values,
    max_size=4,
)
content_types = st.sampled_from(
    ["application/json", FORM, "text/plain", "multipart/form-data; boundary=x", "", "json"]
)


@pytest.mark.django_db
@given(
    name=st.sampled_from(sorted(ENDPOINTS)),
    body=bodies,
    content_type=content_types,
    headers=signature_headers,
)
@settings(max_examples=120)
def test_any_unsigned_request_is_refused_logged_and_changes_nothing(
    client, sessions, name, body, content_type, headers
):
    before, last = _snapshot(), _last_delivery_id()
    response = _post(client, name, body, content_type, headers)
    expect = 413 if len(body) > MAX_BODY else None
    _check_refused(name, response, before, last, expect=expect)


# --- Signed by the provider, but strange -----------------------------------------------------

odd_values = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(10**30), 10**30),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(st.characters(codec="utf-8", exclude_categories=["Cs"], exclude_characters="\x00")),
    st.sampled_from(["paid", "failed", "finished", "charge:confirmed", "10.00", "9.99", "BRL"]),
    st.lists(st.integers(), max_size=2),
    st.dictionaries(st.sampled_from(["amount", "currency", "local"]), st.text(), max_size=2),
)


def _signed(name: str, session, overrides: dict, keep_reference: bool):
    fields = _fields(name, session)
    if name == "coinbase":
        data = fields["event"]["data"]
        for key, value in overrides.items():
            if key in ("type", "id"):
                fields["event"][key] = value
            elif key in ("amount", "currency"):
                data["pricing"]["local"][key] = value
            else:
                data[key] = value
        if not keep_reference:
            data["metadata"] = {"reference": "ps_unknown"}
        raw = json.dumps(fields).encode()
        return raw, {"x-cc-webhook-signature": fake_billing.coinbase_sign(raw, CB_SECRET)}
    fields.update(overrides)
    if not keep_reference:
        fields["order_id" if name == "nowpayments" else "reference"] = "ps_unknown"
    if name == "nowpayments":
        raw = json.dumps(fields).encode()
        tokens = json.loads(raw, parse_float=fake_billing.RawNumber)
        return raw, {"x-nowpayments-sig": fake_billing.nowpayments_sign(tokens, NP_SECRET)}
    raw = json.dumps(fields)
    msg_id, now = f"msg_{uuid.uuid4().hex}", int(time.time())
    signature = Webhook(KIOSK_SECRET).sign(msg_id, datetime.fromtimestamp(now, UTC), raw)
    return raw.encode(), {
        "webhook-id": msg_id,
        "webhook-timestamp": str(now),
        "webhook-signature": signature,
    }


@pytest.mark.django_db
@given(
    name=st.sampled_from(["kiosk", "nowpayments", "coinbase"]),
    overrides=st.dictionaries(
        st.sampled_from(
            [
                "transaction_id",
                "status",
                "amount",
                "currency",
                "payment_id",
                "payment_status",
                "price_amount",
                "price_currency",
                "type",
                "id",
                "metadata",
                "pricing",
            ]
        ),
        odd_values,
        max_size=4,
    ),
    keep_reference=st.booleans(),
)
@settings(max_examples=80)
def test_signed_but_strange_notifications_never_5xx_nor_regress(
    client, sessions, name, overrides, keep_reference
):
    session = sessions[name]
    try:
        body, headers = _signed(name, session, overrides, keep_reference)
    except TypeError:
        assume(False)  # not JSON-serialisable as the provider would send it
    before = dict(PaymentSession.objects.values_list("pk", "status"))
    last = _last_delivery_id()
    response = client.post(
        ENDPOINTS[name][0], data=body, content_type="application/json", headers=headers
    )
    assert response.status_code < 500, response.content
    delivery = WebhookDelivery.objects.get(pk__gt=last)
    assert delivery.signature_valid is True and delivery.response_status == response.status_code
    for pk, status in PaymentSession.objects.values_list("pk", "status"):
        assert status == before[pk] or status in PAYMENT_MAY_BECOME[before[pk]]


@pytest.mark.django_db
def test_coinbase_pricing_local_that_is_not_an_object_is_malformed(client, sessions):
    body, headers = _signed("coinbase", sessions["coinbase"], {"pricing": {"local": "9.99"}}, True)
    response = client.post(
        "/webhooks/coinbase/", data=body, content_type="application/json", headers=headers
    )
    assert response.status_code == 400


WRONG_TYPES = [
    ("coinbase", {"pricing": "9.99"}),
    ("coinbase", {"pricing": {"local": ["9.99", "USD"]}}),
    ("coinbase", {"metadata": "ps_x"}),
    ("coinbase", {"metadata": {"reference": ["ps_x"]}}),
    ("coinbase", {"type": ["charge:confirmed"]}),
    ("nowpayments", {"order_id": {"reference": "ps_x"}}),
    ("nowpayments", {"payment_id": [5077125051]}),
    ("nowpayments", {"payment_id": 1.5}),
    ("nowpayments", {"order_id": "ps_\x00"}),
    ("kiosk", {"transaction_id": {"id": "tx_1"}}),
    ("kiosk", {"reference": ["ps_x"]}),
    ("kiosk", {"status": ["paid"]}),
    ("kiosk", {"reference": "ps_\x00"}),
]


@pytest.mark.django_db
@pytest.mark.parametrize("name, overrides", WRONG_TYPES, ids=[repr(c) for c in WRONG_TYPES])
def test_signed_fields_of_the_wrong_json_type_are_malformed(client, sessions, name, overrides):
    """A field that must be an object, text or a number arriving as another JSON type (or
    as text the database cannot hold) is a 400 "malformed", never a crash or a lookup."""
    before, last = _snapshot(), _last_delivery_id()
    body, headers = _signed(name, sessions[name], overrides, True)
    response = client.post(
        ENDPOINTS[name][0], data=body, content_type="application/json", headers=headers
    )
    assert response.status_code == 400, response.content
    delivery = WebhookDelivery.objects.get(pk__gt=last)
    assert delivery.signature_valid is True and delivery.status == DeliveryStatus.REJECTED
    assert delivery.error.startswith("malformed"), delivery.error
    assert _snapshot() == before
