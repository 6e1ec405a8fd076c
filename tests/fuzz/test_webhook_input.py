"""Bad input on every webhook URL: answered with a 4xx (Click: HTTP 200 and one of its own
negative error codes), never stored as a WebhookDelivery, counted once as a
WebhookRefusal (a hash of the body, at most 1 KB of body and 1 KB of headers), and nothing
else changes.

A signed notification the intake cannot read is a 400 and, likewise, only a refusal. A
signed, readable one is stored and processed by the workers: neither the intake's answer
nor the delivery's outcome is ever a 5xx.

Real sessions exist for every provider, and bad requests name their references, so "nothing
changed" means something: no payment session moves, nothing is fulfilled, no event or alert.
"""

import hashlib
import itertools
import json
import time
import uuid
from datetime import UTC, datetime
from urllib.parse import urlencode

import pytest
from django.db.models import Sum
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from standardwebhooks.webhooks import Webhook

from fakeproviders import billing as fake_billing
from notifications.models import Alert, Event
from payments.models import (
    DeliveryStatus,
    LedgerEntry,
    PaymentAudit,
    PaymentSession,
    WebhookDelivery,
    WebhookRefusal,
)
from payments.services import payment_session_create
from tests.conftest import processed
from tests.fuzz.test_state_machines import PAYMENT_MAY_BECOME
from tests.payments.conftest import KIOSK_SECRET
from tests.subscriptions.conftest import *  # noqa: F403 - provider fakes and secrets
from tests.subscriptions.conftest import CB_SECRET, NP_SECRET, checkout

MAX_BODY = 2048
SAMPLE_BYTES = 1024  # a refusal keeps at most this much of the body, and of the headers
# What the intake answers for each refusal reason (Click: HTTP 200 and its own code).
REFUSAL_STATUS = {
    "method not allowed": 405,
    "body too large": 413,
    "invalid signature": 401,
    "malformed payload": 400,
}
CLICK_SIGN_FAILED, CLICK_BAD_REQUEST = -1, -8
# Click's code for each reason: a bad signature is −1, anything unreadable −8.
CLICK_CODE = {
    "method not allowed": CLICK_BAD_REQUEST,
    "body too large": CLICK_BAD_REQUEST,
    "invalid signature": CLICK_SIGN_FAILED,
    "malformed payload": CLICK_BAD_REQUEST,
}


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
    """Everything a webhook could change: sessions, audit, money, subscriptions, the event
    log, alerts, and the stored deliveries."""
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
        Event.objects.count(),
        Alert.objects.aggregate(raised=Sum("count"))["raised"] or 0,
        WebhookDelivery.objects.count(),
    )


def _refusal_counts() -> dict[int, int]:
    return dict(WebhookRefusal.objects.values_list("pk", "count"))


def _counted_once(before: dict[int, int]) -> WebhookRefusal:
    """The one refusal row this request was counted on (its count up by exactly one, no
    other row changed)."""
    after = _refusal_counts()
    assert sum(after.values()) == sum(before.values()) + 1, "each refused request counts once"
    changed = [pk for pk, count in after.items() if count != before.get(pk, 0)]
    assert len(changed) == 1, changed
    assert after[changed[0]] == before.get(changed[0], 0) + 1
    return WebhookRefusal.objects.get(pk=changed[0])


def _check_sample(refusal: WebhookRefusal, body: bytes, cap: int = MAX_BODY) -> None:
    """A refusal keeps at most 1 KB of body and of headers and, from its hour's first
    request, the size, the hash of the body as received (capped) and its first bytes."""
    head = bytes(refusal.body_head)
    assert len(head) <= SAMPLE_BYTES and len(refusal.headers_head) <= SAMPLE_BYTES
    if refusal.count == 1:  # repeats within the hour are only counted: the sample is the first's
        assert refusal.body_size == len(body)
        received = body[:cap]
        assert refusal.body_sha256 == hashlib.sha256(received).hexdigest()
        assert head == received[:SAMPLE_BYTES]


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


def _check_refused(name, response, before, refusals_before, *, reason=None):
    """A 4xx (Click: HTTP 200 and a negative code), no delivery stored, one refusal
    counted, nothing else changed. `reason`: the one expected (else any refusal of a
    request that is not the provider's: a bad signature, or unreadable)."""
    refusal = _counted_once(refusals_before)
    assert _snapshot() == before, "a refused request changed something (or was stored)"
    assert refusal.provider == _provider(name)
    if reason is not None:
        assert refusal.reason == reason, (refusal.reason, refusal.detail)
    else:
        assert refusal.reason in ("invalid signature", "malformed payload"), refusal.reason
    if _is_click(name):
        assert response.status_code == 200, response.content
        answer = response.json()
        assert answer["error"] == CLICK_CODE[refusal.reason], (answer, refusal.detail)
    else:
        assert response.status_code == REFUSAL_STATUS[refusal.reason], response.content
        assert response.json().get("error") == refusal.reason
        assert refusal.response_status == response.status_code
    return refusal


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
def test_bad_input_is_refused_counted_and_changes_nothing(client, sessions, name, category):
    session = sessions[_provider(name)]
    body, content_type, headers = _bad_request(name, session, category)
    before, refusals = _snapshot(), _refusal_counts()
    response = _post(client, name, body, content_type, headers)
    reason = "body too large" if category == "huge" else None
    if not _is_click(name) and category != "huge":
        reason = "invalid signature"  # checked first, whatever the body holds
    refusal = _check_refused(name, response, before, refusals, reason=reason)
    _check_sample(refusal, body)


@pytest.mark.django_db
@pytest.mark.parametrize("name", list(ENDPOINTS))
def test_get_instead_of_post_is_refused(client, sessions, name):
    before, refusals = _snapshot(), _refusal_counts()
    response = _post(client, name, b"", "", {}, method="get")
    refusal = _check_refused(name, response, before, refusals, reason="method not allowed")
    _check_sample(refusal, b"")


@pytest.mark.django_db
@pytest.mark.parametrize("name", list(ENDPOINTS))
def test_a_forged_64_kb_request_keeps_at_most_4_kb(client, sessions, settings, name):
    """A forged request as large as the cap allows, with a large header too, is refused
    (a bad signature) and leaves a compact sample, never its whole body."""
    settings.WEBHOOK_MAX_BODY_BYTES = cap = 64 * 1024
    fields = _fields(name, sessions[_provider(name)])
    field = "error_note" if _is_click(name) else "padding"
    fields[field] = ""
    fields[field] = "x" * (cap - len(_encode(name, fields)[0]))
    body, content_type = _encode(name, fields)
    assert len(body) == cap
    headers = {**_wrong_signatures(name), "x-forwarded-note": "h" * 8000}
    before, refusals = _snapshot(), _refusal_counts()
    response = _post(client, name, body, content_type, headers)
    refusal = _check_refused(name, response, before, refusals, reason="invalid signature")
    _check_sample(refusal, body, cap)
    kept = len(bytes(refusal.body_head)) + len(refusal.headers_head.encode())
    assert kept + len(refusal.detail.encode()) <= 4096, kept


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
def test_any_unsigned_request_is_refused_counted_and_changes_nothing(
    client, sessions, name, body, content_type, headers
):
    before, refusals = _snapshot(), _refusal_counts()
    response = _post(client, name, body, content_type, headers)
    reason = "body too large" if len(body) > MAX_BODY else None
    refusal = _check_refused(name, response, before, refusals, reason=reason)
    _check_sample(refusal, body)


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


_event_numbers = itertools.count(int(time.time() * 1000))


def _signed(name: str, session, overrides: dict, keep_reference: bool):
    """A notification signed as the provider signs it. Each carries an event id of its own
    (unless the overrides set one), so that it is processed rather than answered as a
    repeat of the previous one."""
    fields = _fields(name, session)
    if name == "coinbase":
        fields["id"] = fields["event"]["id"] = f"evt-{uuid.uuid4().hex}"
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
    if name == "nowpayments":
        fields["updated_at"] = next(_event_numbers)  # in its event id, with payment_id
    fields.update(overrides)
    if not keep_reference:
        fields["order_id" if name == "nowpayments" else "reference"] = "ps_unknown"
    if name == "nowpayments":
        raw = json.dumps(fields).encode()
        tokens = json.loads(raw, parse_float=fake_billing.RawNumber)
        return raw, {"x-nowpayments-sig": fake_billing.nowpayments_sign(tokens, NP_SECRET)}
    return _kiosk_signed(json.dumps(fields).encode())


def _kiosk_signed(raw: bytes) -> tuple[bytes, dict]:
    """Signed with the Standard Webhooks secret, as the kiosk terminal signs."""
    msg_id, now = f"msg_{uuid.uuid4().hex}", int(time.time())
    signature = Webhook(KIOSK_SECRET).sign(msg_id, datetime.fromtimestamp(now, UTC), raw.decode())
    return raw, {
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
    last, refusals = _last_delivery_id(), _refusal_counts()
    response = client.post(
        ENDPOINTS[name][0], data=body, content_type="application/json", headers=headers
    )
    assert response.status_code < 500, response.content
    new = WebhookDelivery.objects.filter(pk__gt=last)
    if response.status_code == 400:
        # Unreadable (types, encoding): refused at intake, only counted.
        assert not new.exists(), "a malformed notification is not stored"
        refusal = _counted_once(refusals)
        assert (refusal.provider, refusal.reason) == (name, "malformed payload")
    else:
        assert response.status_code == 200, response.content
        result = processed(response)  # the workers process what was accepted
        assert result.intake["status"] in ("accepted", "ignored", "duplicate"), result.intake
        if result.intake["status"] == "duplicate":  # an event id the overrides repeated
            assert not new.exists()
            assert _counted_once(refusals).reason == "duplicate event"
            assert WebhookDelivery.objects.filter(pk=result.intake["delivery"]).exists()
        else:
            assert _refusal_counts() == refusals
            delivery = new.get()
            assert delivery.pk == result.intake["delivery"] and delivery.signature_valid is True
            settled = (
                DeliveryStatus.PROCESSED,
                DeliveryStatus.DUPLICATE,
                DeliveryStatus.IGNORED,
                DeliveryStatus.REJECTED,
            )
            assert delivery.status in settled, (delivery.status, delivery.error)
            assert result.json()["status"] == delivery.status
            assert delivery.response_status is not None and delivery.response_status < 500
            assert not delivery.traceback, delivery.traceback
    for pk, status in PaymentSession.objects.values_list("pk", "status"):
        assert status == before[pk] or status in PAYMENT_MAY_BECOME[before[pk]]


def _check_malformed(name, response, before, refusals, body) -> WebhookRefusal:
    """A signed notification the intake cannot read: 400, not stored, one refusal
    ("malformed payload"), nothing else changed."""
    assert response.status_code == 400, response.content
    refusal = _check_refused(name, response, before, refusals, reason="malformed payload")
    _check_sample(refusal, body, len(body))
    return refusal


@pytest.mark.django_db
def test_coinbase_pricing_local_that_is_not_an_object_is_malformed(client, sessions):
    body, headers = _signed("coinbase", sessions["coinbase"], {"pricing": {"local": "9.99"}}, True)
    before, refusals = _snapshot(), _refusal_counts()
    response = client.post(
        "/webhooks/coinbase/", data=body, content_type="application/json", headers=headers
    )
    _check_malformed("coinbase", response, before, refusals, body)


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
    before, refusals = _snapshot(), _refusal_counts()
    body, headers = _signed(name, sessions[name], overrides, True)
    response = client.post(
        ENDPOINTS[name][0], data=body, content_type="application/json", headers=headers
    )
    _check_malformed(name, response, before, refusals, body)


DEPTH = 100_000


def _nested_kiosk(session, depth: int) -> tuple[bytes, dict]:
    """A kiosk notification with a field nested `depth` lists deep, validly signed."""
    fields = json.dumps(_fields("kiosk", session)).encode()
    return _kiosk_signed(fields[:-1] + b', "extra": ' + b"[" * depth + b"]" * depth + b"}")


@pytest.mark.django_db
def test_a_signed_notification_nested_100_000_deep_is_malformed_not_a_crash(
    client, sessions, settings
):
    """Nesting deeper than any parser recurses is the sender's fault: 400 (never 500),
    nothing stored, one refusal whose sample stays within 4 KB."""
    settings.WEBHOOK_MAX_BODY_BYTES = 4 * DEPTH  # the body fits: it is read and verified
    body, headers = _nested_kiosk(sessions["kiosk"], DEPTH)
    before, refusals = _snapshot(), _refusal_counts()
    response = client.post(
        "/webhooks/kiosk/", data=body, content_type="application/json", headers=headers
    )
    assert response.status_code == 400, response.content
    refusal = _check_malformed("kiosk", response, before, refusals, body)
    assert len(bytes(refusal.body_head)) + len(refusal.headers_head.encode()) <= 4096
    # The depth alone made it unreadable: the same notification nested 10 deep is taken.
    body, headers = _nested_kiosk(sessions["kiosk"], 10)
    response = client.post(
        "/webhooks/kiosk/", data=body, content_type="application/json", headers=headers
    )
    assert response.status_code == 200 and response.json()["status"] == "accepted"
