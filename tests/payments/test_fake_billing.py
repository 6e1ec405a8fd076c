"""The fake Click / NOWPayments / Coinbase Commerce server: its APIs, its hosted pages and
the callbacks it sends, checked against signatures computed here independently."""

import hashlib
import hmac
import json
import re
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs

import pytest
import requests

from fakeproviders.billing import (
    FakeBilling,
    RawNumber,
    click_fields,
    click_sign,
    coinbase_event_body,
    coinbase_send,
    coinbase_sign,
    nowpayments_send,
    nowpayments_serialise,
    nowpayments_sign,
)

CLICK_SECRET = "click-secret-for-tests"
NP_KEY = "NP-API-KEY-TESTS"
NP_SECRET = "np-ipn-secret-for-tests"
CB_KEY = "cb-api-key-tests"
CB_SECRET = "cb-webhook-secret-for-tests"
CB_HEADERS = {"X-CC-Api-Key": CB_KEY, "X-CC-Version": "2018-03-22"}


class Receiver:
    """Stands in for our webhook endpoints: records every request, answers Click like a
    merchant would (prepare id 7001, confirm id 9001, or `click_error`)."""

    def __init__(self):
        self.requests: list[dict] = []
        self.click_error = 0
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                receiver.requests.append(
                    {"path": self.path, "headers": dict(self.headers), "body": body}
                )
                answer = {"ok": True}
                if self.path.startswith("/click/"):
                    form = {k: v[0] for k, v in parse_qs(body.decode()).items()}
                    answer = {
                        "click_trans_id": form["click_trans_id"],
                        "merchant_trans_id": form["merchant_trans_id"],
                        "error": receiver.click_error,
                        "error_note": "Success" if receiver.click_error == 0 else "Error",
                    }
                    answer[
                        "merchant_prepare_id" if form["action"] == "0" else "merchant_confirm_id"
                    ] = 7001 if form["action"] == "0" else 9001
                data = json.dumps(answer).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(
            target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        ).start()

    def stop(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver():
    r = Receiver()
    yield r
    r.stop()


def make_fake(receiver_url: str) -> FakeBilling:
    return FakeBilling(
        click_service_id="41",
        click_merchant_id="77",
        click_secret_key=CLICK_SECRET,
        nowpayments_api_key=NP_KEY,
        nowpayments_ipn_secret=NP_SECRET,
        coinbase_api_key=CB_KEY,
        coinbase_webhook_secret=CB_SECRET,
        click_prepare_url=f"{receiver_url}/click/prepare/",
        click_complete_url=f"{receiver_url}/click/complete/",
        coinbase_webhook_url=f"{receiver_url}/coinbase/",
    ).start()


@pytest.fixture
def fake(receiver):
    f = make_fake(receiver.url)
    yield f
    f.stop()


def md5(text: str) -> str:
    return hashlib.md5(text.encode(), usedforsecurity=False).hexdigest()


class _Token(str):
    pass


def sorted_text(value) -> str:
    """Key-sorted compact JSON keeping number tokens as received (the test's own writer)."""
    if isinstance(value, _Token):
        return str(value)
    if isinstance(value, dict):
        return (
            "{" + ",".join(f"{sorted_text(k)}:{sorted_text(value[k])}" for k in sorted(value)) + "}"
        )
    if isinstance(value, list):
        return "[" + ",".join(sorted_text(v) for v in value) + "]"
    return json.dumps(value, ensure_ascii=False)


def np_expected_sig(body: bytes) -> str:
    parsed = json.loads(body, parse_float=_Token, parse_int=_Token)
    text = sorted_text(parsed)
    return hmac.new(NP_SECRET.encode(), text.encode(), hashlib.sha512).hexdigest()


# --- Click -------------------------------------------------------------------------------


def test_click_fields_signs_prepare_and_complete_like_click():
    prepare = click_fields(
        secret_key="s3cret",
        service_id="41",
        click_trans_id="2100000001",
        merchant_trans_id="ref-1",
        amount="15000.50",
        action="0",
        sign_time="2026-11-02 10:11:12",
    )
    assert prepare["sign_string"] == md5("210000000141s3cretref-115000.5002026-11-02 10:11:12")
    assert all(isinstance(v, str) for v in prepare.values())
    assert "merchant_prepare_id" not in prepare
    complete = click_fields(
        secret_key="s3cret",
        service_id="41",
        click_trans_id="2100000001",
        merchant_trans_id="ref-1",
        amount="15000.50",
        action="1",
        merchant_prepare_id="7001",
        sign_time="2026-11-02 10:11:13",
    )
    assert complete["sign_string"] == md5("210000000141s3cretref-1700115000.5012026-11-02 10:11:13")
    assert complete["sign_string"] == click_sign(
        secret_key="s3cret",
        click_trans_id="2100000001",
        service_id="41",
        merchant_trans_id="ref-1",
        amount="15000.50",
        action="1",
        sign_time="2026-11-02 10:11:13",
        merchant_prepare_id="7001",
    )


def test_click_page_pay_sends_prepare_then_complete_and_redirects(fake, receiver):
    params = {
        "service_id": "41",
        "merchant_id": "77",
        "amount": "15000.50",
        "transaction_param": "ref-abc",
        "return_url": "http://shop.test/back?x=1",
    }
    page = requests.get(f"{fake.url}/click/services/pay", params=params, timeout=5)
    assert page.status_code == 200
    assert "<title>Click</title>" in page.text
    assert "15000.50" in page.text and "ref-abc" in page.text
    assert 'id="pay"' in page.text and 'id="cancel"' in page.text

    answer = requests.post(
        f"{fake.url}/click/services/pay",
        data={**params, "choice": "pay"},
        allow_redirects=False,
        timeout=5,
    )
    assert answer.status_code == 303
    assert answer.headers["Location"] == "http://shop.test/back?x=1"
    assert [r["path"] for r in receiver.requests] == ["/click/prepare/", "/click/complete/"]
    prepare, complete = (
        {k: v[0] for k, v in parse_qs(r["body"].decode()).items()} for r in receiver.requests
    )
    assert receiver.requests[0]["headers"]["Content-Type"] == "application/x-www-form-urlencoded"
    assert prepare["action"] == "0" and complete["action"] == "1"
    assert prepare["amount"] == complete["amount"] == "15000.50"
    assert prepare["merchant_trans_id"] == "ref-abc"
    assert prepare["click_trans_id"] == complete["click_trans_id"] == "2100000001"
    assert re.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d", prepare["sign_time"])
    assert prepare["sign_string"] == md5(
        f"2100000001{'41'}{CLICK_SECRET}ref-abc15000.500{prepare['sign_time']}"
    )
    assert complete["merchant_prepare_id"] == "7001"
    assert complete["error"] == "0"
    assert complete["sign_string"] == md5(
        f"210000000141{CLICK_SECRET}ref-abc700115000.501{complete['sign_time']}"
    )
    assert [s["status"] for s in fake.sent] == [200, 200]
    assert fake.sent[1]["json"]["merchant_confirm_id"] == 9001


def test_click_cancel_sends_complete_with_error_and_redirects(fake, receiver):
    form = {
        "service_id": "41",
        "merchant_id": "77",
        "amount": "1000",
        "transaction_param": "ref-c",
        "return_url": "http://shop.test/back",
        "choice": "cancel",
    }
    answer = requests.post(
        f"{fake.url}/click/services/pay", data=form, allow_redirects=False, timeout=5
    )
    assert answer.status_code == 303
    assert answer.headers["Location"] == "http://shop.test/back"
    complete = {k: v[0] for k, v in parse_qs(receiver.requests[1]["body"].decode()).items()}
    assert (complete["error"], complete["error_note"]) == ("-5017", "Transaction cancelled")


def test_click_no_complete_when_prepare_fails(fake, receiver):
    receiver.click_error = -5
    result = fake.click_pay("unknown-ref", "500")
    assert result["prepare"]["error"] == -5
    assert result["complete"] is None
    assert len(receiver.requests) == 1


def test_click_page_refuses_unknown_service(fake):
    params = {"service_id": "999", "merchant_id": "77", "amount": "1", "transaction_param": "r"}
    page = requests.get(f"{fake.url}/click/services/pay", params=params, timeout=5)
    assert page.status_code == 400


# --- NOWPayments ---------------------------------------------------------------------------


def np_invoice(fake, receiver, **overrides):
    body = {
        "price_amount": 100,
        "price_currency": "USD",
        "order_id": "ref-np",
        "order_description": "Çay x 1",
        "ipn_callback_url": f"{receiver.url}/nowpayments/",
        "success_url": "http://shop.test/ok",
        "cancel_url": "http://shop.test/cancel",
    } | overrides
    return requests.post(
        f"{fake.url}/nowpayments/v1/invoice", json=body, headers={"x-api-key": NP_KEY}, timeout=5
    )


def test_nowpayments_serialise_and_send_sign_the_sorted_text(receiver):
    obj = {"b": RawNumber("6.35e-05"), "a": {"z": RawNumber("100"), "y": "Çay"}, "c": None}
    assert (
        nowpayments_serialise(obj, sort_keys=False)
        == '{"b":6.35e-05,"a":{"z":100,"y":"Çay"},"c":null}'
    )
    sorted_expected = '{"a":{"y":"Çay","z":100},"b":6.35e-05,"c":null}'
    assert nowpayments_serialise(obj, sort_keys=True) == sorted_expected
    expected = hmac.new(b"k", sorted_expected.encode(), hashlib.sha512).hexdigest()
    assert nowpayments_sign(obj, "k") == expected
    nowpayments_send(f"{receiver.url}/np", obj, secret="k")
    sent = receiver.requests[0]
    assert sent["body"].decode() == '{"b":6.35e-05,"a":{"z":100,"y":"Çay"},"c":null}'
    assert sent["headers"]["x-nowpayments-sig"] == expected
    with pytest.raises(TypeError):
        nowpayments_serialise({"x": 0.1}, sort_keys=True)


def test_nowpayments_invoice_auth_and_validation(fake, receiver):
    wrong = requests.post(
        f"{fake.url}/nowpayments/v1/invoice",
        json={"price_amount": 1, "price_currency": "usd"},
        headers={"x-api-key": "nope"},
        timeout=5,
    )
    assert wrong.status_code == 403
    assert wrong.json() == {
        "statusCode": 403,
        "code": "INVALID_API_KEY",
        "message": "Invalid api key",
    }
    for bad in ({"price_amount": 0}, {"price_currency": None}, {"price_amount": "abc"}):
        answer = np_invoice(fake, receiver, **bad)
        assert answer.status_code == 400
        assert answer.json()["code"] == "INVALID_REQUEST_PARAMS"


def test_nowpayments_page_pay_sends_three_signed_ipns_and_redirects(fake, receiver):
    invoice = np_invoice(fake, receiver).json()
    assert re.fullmatch(r"\d+", invoice["id"])
    assert invoice["price_amount"] == "100" and invoice["pay_currency"] is None
    assert invoice["invoice_url"] == f"{fake.url}/nowpayments/payment/?iid={invoice['id']}"
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", invoice["created_at"])
    page = requests.get(invoice["invoice_url"], timeout=5)
    assert "<title>NOWPayments</title>" in page.text
    assert all(f'id="{b}"' in page.text for b in ("pay", "pay-partial", "cancel"))

    answer = requests.post(
        f"{fake.url}/nowpayments/payment/",
        data={"iid": invoice["id"], "choice": "pay"},
        allow_redirects=False,
        timeout=5,
    )
    assert answer.status_code == 303 and answer.headers["Location"] == "http://shop.test/ok"
    ipns = [json.loads(r["body"]) for r in receiver.requests]
    assert [i["payment_status"] for i in ipns] == ["waiting", "confirming", "finished"]
    assert {i["payment_id"] for i in ipns} == {5_000_000_001}
    assert ipns[0]["invoice_id"] == int(invoice["id"])
    assert (ipns[2]["order_id"], ipns[2]["price_currency"]) == ("ref-np", "usd")

    for request in receiver.requests:
        body = request["body"]
        text = body.decode()
        assert '"pay_amount":6.35e-05' in text and '"price_amount":100,' in text
        assert text.startswith('{"payment_id":5000000001,"parent_payment_id":null,')
        assert request["headers"]["Content-Type"] == "application/json"
        signature = request["headers"]["x-nowpayments-sig"]
        assert signature == np_expected_sig(body)
        # The pitfall: re-serialising through Python floats gives other text, another HMAC.
        naive = json.dumps(json.loads(body), sort_keys=True, separators=(",", ":"))
        naive_sig = hmac.new(NP_SECRET.encode(), naive.encode(), hashlib.sha512).hexdigest()
        assert naive_sig != signature
        naive_utf8 = json.dumps(
            json.loads(body), sort_keys=True, separators=(",", ":"), ensure_ascii=False
        )
        assert naive_utf8 != np_expected_text(body)

    status = requests.get(
        f"{fake.url}/nowpayments/v1/payment/5000000001", headers={"x-api-key": NP_KEY}, timeout=5
    )
    assert status.json()["payment_status"] == "finished"
    missing = requests.get(
        f"{fake.url}/nowpayments/v1/payment/1", headers={"x-api-key": NP_KEY}, timeout=5
    )
    assert missing.status_code == 404


def np_expected_text(body: bytes) -> str:
    return sorted_text(json.loads(body, parse_float=_Token, parse_int=_Token))


def test_nowpayments_partial_and_cancel(fake, receiver):
    invoice = np_invoice(fake, receiver, price_amount="1300000.5", price_currency="UZS").json()
    partial = requests.post(
        f"{fake.url}/nowpayments/payment/",
        data={"iid": invoice["id"], "choice": "pay-partial"},
        allow_redirects=False,
        timeout=5,
    )
    assert partial.status_code == 303 and partial.headers["Location"] == "http://shop.test/ok"
    (only,) = receiver.requests
    text = only["body"].decode()
    assert '"payment_status":"partially_paid"' in text
    assert '"price_amount":1300000.5,"price_currency":"uzs"' in text
    cancel = requests.post(
        f"{fake.url}/nowpayments/payment/",
        data={"iid": invoice["id"], "choice": "cancel"},
        allow_redirects=False,
        timeout=5,
    )
    assert cancel.headers["Location"] == "http://shop.test/cancel"
    assert len(receiver.requests) == 1

    fake.nowpayments_ipn(invoice["id"], "finished", actually_paid="0.00001", price_amount=5)
    text = receiver.requests[1]["body"].decode()
    assert '"actually_paid":0.00001,' in text and '"price_amount":5,' in text
    assert receiver.requests[1]["headers"]["x-nowpayments-sig"] == np_expected_sig(
        receiver.requests[1]["body"]
    )


# --- Coinbase Commerce ---------------------------------------------------------------------

CHARGE = {
    "name": "Coffee",
    "description": "One coffee",
    "pricing_type": "fixed_price",
    "local_price": {"amount": "10.00", "currency": "USD"},
    "metadata": {"reference": "ref-cb"},
    "redirect_url": "http://shop.test/cb-ok",
    "cancel_url": "http://shop.test/cb-cancel",
}


def test_coinbase_charge_auth_validation_and_lookup(fake):
    wrong = requests.post(
        f"{fake.url}/coinbase/charges",
        json=CHARGE,
        headers={**CB_HEADERS, "X-CC-Api-Key": "nope"},
        timeout=5,
    )
    assert wrong.status_code == 401
    assert wrong.json()["error"]["type"] == "authorization_error"
    bad = requests.post(
        f"{fake.url}/coinbase/charges",
        json={**CHARGE, "local_price": {"currency": "USD"}},
        headers=CB_HEADERS,
        timeout=5,
    )
    assert bad.status_code == 400 and bad.json()["error"]["type"] == "invalid_request"

    created = requests.post(
        f"{fake.url}/coinbase/charges", json=CHARGE, headers=CB_HEADERS, timeout=5
    )
    assert created.status_code == 201
    charge = created.json()["data"]
    assert re.fullmatch(r"[A-Z0-9]{8}", charge["code"])
    assert charge["hosted_url"] == f"{fake.url}/coinbase/pay/{charge['code']}"
    assert charge["pricing"] == {"local": {"amount": "10.00", "currency": "USD"}}
    assert [t["status"] for t in charge["timeline"]] == ["NEW"]
    assert charge["metadata"] == {"reference": "ref-cb"} and charge["resource"] == "charge"
    for key in (charge["id"], charge["code"]):
        found = requests.get(f"{fake.url}/coinbase/charges/{key}", headers=CB_HEADERS, timeout=5)
        assert found.json()["data"]["id"] == charge["id"]
    missing = requests.get(f"{fake.url}/coinbase/charges/NOPE1234", headers=CB_HEADERS, timeout=5)
    assert missing.status_code == 404


def test_coinbase_page_pay_sends_pending_then_confirmed(fake, receiver):
    charge = requests.post(
        f"{fake.url}/coinbase/charges", json=CHARGE, headers=CB_HEADERS, timeout=5
    ).json()["data"]
    page = requests.get(charge["hosted_url"], timeout=5)
    assert "<title>Coinbase Commerce</title>" in page.text
    assert 'id="pay"' in page.text and 'id="cancel"' in page.text
    answer = requests.post(
        charge["hosted_url"], data={"choice": "pay"}, allow_redirects=False, timeout=5
    )
    assert answer.status_code == 303 and answer.headers["Location"] == "http://shop.test/cb-ok"

    events = []
    for request in receiver.requests:
        assert request["path"] == "/coinbase/"
        expected = hmac.new(CB_SECRET.encode(), request["body"], hashlib.sha256).hexdigest()
        assert request["headers"]["X-CC-Webhook-Signature"] == expected
        events.append(json.loads(request["body"]))
    assert [e["event"]["type"] for e in events] == ["charge:pending", "charge:confirmed"]
    assert events[0]["event"]["id"] != events[1]["event"]["id"]
    assert events[1]["attempt_number"] == 1 and events[1]["event"]["resource"] == "event"
    data = events[1]["event"]["data"]
    assert data["id"] == charge["id"] and data["metadata"] == {"reference": "ref-cb"}
    assert [t["status"] for t in data["timeline"]] == ["NEW", "PENDING", "COMPLETED"]
    assert data["payments"][0]["value"]["local"] == {"amount": "10.00", "currency": "USD"}
    assert data["payments"][0]["value"]["crypto"]["currency"] == "BTC"

    cancel = requests.post(
        charge["hosted_url"], data={"choice": "cancel"}, allow_redirects=False, timeout=5
    )
    assert cancel.headers["Location"] == "http://shop.test/cb-cancel"
    assert len(receiver.requests) == 2


def test_coinbase_send_signs_raw_body(receiver):
    body = coinbase_event_body({"id": "c1", "code": "ABCD1234"}, "charge:failed", event_id="e1")
    assert body["event"]["id"] == "e1" and body["event"]["type"] == "charge:failed"
    raw = b'{"id": "x",  "event": {}}'
    coinbase_send(f"{receiver.url}/cb", raw, secret="s")
    sent = receiver.requests[0]
    assert sent["body"] == raw
    expected = hmac.new(b"s", raw, hashlib.sha256).hexdigest()
    assert sent["headers"]["X-CC-Webhook-Signature"] == expected == coinbase_sign(raw, "s")


# --- both -------------------------------------------------------------------------------------


def test_outage_makes_the_apis_answer_503(fake, receiver):
    fake.outage = True
    assert np_invoice(fake, receiver).status_code == 503
    down = requests.post(f"{fake.url}/coinbase/charges", json=CHARGE, headers=CB_HEADERS, timeout=5)
    assert down.status_code == 503


def test_pages_redirect_and_record_failures_when_our_server_is_down(receiver):
    receiver.stop()  # nothing listens at these URLs any more
    fake = make_fake(receiver.url)
    try:
        charge = requests.post(
            f"{fake.url}/coinbase/charges", json=CHARGE, headers=CB_HEADERS, timeout=5
        ).json()["data"]
        answer = requests.post(
            charge["hosted_url"], data={"choice": "pay"}, allow_redirects=False, timeout=5
        )
        assert answer.status_code == 303
        assert [s["provider"] for s in fake.sent] == ["coinbase", "coinbase"]
        assert all(s["status"] is None and s["error"] for s in fake.sent)
        with pytest.raises(requests.ConnectionError):
            fake.coinbase_event(charge["id"], "charge:failed")
    finally:
        fake.stop()
