"""A local Click, NOWPayments and Coinbase Commerce on loopback, speaking their real protocols.

- Click (SHOP API): a payment page at `/click/services/pay`; paying sends the signed,
  form-encoded prepare (`action=0`) and complete (`action=1`) callbacks; cancelling sends a
  prepare and a complete carrying `error=-5017`.
- NOWPayments (API base `<url>/nowpayments`): `POST /v1/invoice`, `GET /v1/payment/<id>`
  (`x-api-key`), an invoice page at `/nowpayments/payment/?iid=<id>`; paying sends IPNs
  signed over the key-sorted serialisation (`x-nowpayments-sig`, HMAC-SHA512), with number
  tokens written as raw text so a verifier that re-serialises through Python floats fails.
- Coinbase Commerce (API base `<url>/coinbase`): `POST /charges`, `GET /charges/<id|code>`
  (`X-CC-Api-Key`, `X-CC-Version`), a hosted page at `/coinbase/pay/<code>`; paying sends
  `charge:pending` then `charge:confirmed` (`X-CC-Webhook-Signature`, HMAC-SHA256).

`outage = True` makes the APIs answer 503. Every callback sent is recorded in `sent`.
No Django here: the module also runs standalone.
"""

import contextlib
import copy
import hashlib
import hmac
import html
import itertools
import json
import re
import secrets
import string
import threading
import uuid
from datetime import UTC, datetime, timedelta
from decimal import Decimal, InvalidOperation
from http.server import BaseHTTPRequestHandler
from urllib.parse import parse_qs, urlencode, urlparse

import requests

from fakeproviders.server import LoopbackServer

TIMEOUT = 10
COINBASE_API_VERSION = "2018-03-22"
CLICK_CANCELLED = ("-5017", "Transaction cancelled")

# --- Click ---------------------------------------------------------------------------------


def click_sign(
    *,
    secret_key: str,
    click_trans_id: str,
    service_id: str,
    merchant_trans_id: str,
    amount: str,
    action: str,
    sign_time: str,
    merchant_prepare_id: str | None = None,
) -> str:
    """Click's `sign_string`: md5 hex over the raw strings; `merchant_prepare_id` only on
    complete."""
    parts = [click_trans_id, service_id, secret_key, merchant_trans_id]
    if merchant_prepare_id is not None:
        parts.append(merchant_prepare_id)
    parts += [amount, action, sign_time]
    return hashlib.md5("".join(str(p) for p in parts).encode(), usedforsecurity=False).hexdigest()


def click_fields(
    *,
    secret_key: str,
    service_id: str,
    click_trans_id: str,
    merchant_trans_id: str,
    amount: str,
    action: str,
    merchant_prepare_id: str | None = None,
    error: str = "0",
    error_note: str = "Success",
    sign_time: str | None = None,
    click_paydoc_id: str | None = None,
) -> dict[str, str]:
    """The form Click posts for prepare (`action="0"`) or complete (`action="1"`, with
    `merchant_prepare_id`), signed. All values are strings, `amount` exactly as given."""
    sign_time = sign_time or datetime.now().strftime("%Y-%m-%d %H:%M:%S")
    fields = {
        "click_trans_id": str(click_trans_id),
        "service_id": str(service_id),
        "click_paydoc_id": str(click_paydoc_id or click_trans_id),
        "merchant_trans_id": str(merchant_trans_id),
    }
    if merchant_prepare_id is not None:
        fields["merchant_prepare_id"] = str(merchant_prepare_id)
    fields |= {
        "amount": str(amount),
        "action": str(action),
        "error": str(error),
        "error_note": str(error_note),
        "sign_time": sign_time,
        "sign_string": click_sign(
            secret_key=secret_key,
            click_trans_id=str(click_trans_id),
            service_id=str(service_id),
            merchant_trans_id=str(merchant_trans_id),
            amount=str(amount),
            action=str(action),
            sign_time=sign_time,
            merchant_prepare_id=None if merchant_prepare_id is None else str(merchant_prepare_id),
        ),
    }
    return fields


def _click_request(fields: dict) -> tuple[bytes, dict[str, str]]:
    return urlencode(fields).encode(), {"Content-Type": "application/x-www-form-urlencoded"}


# --- NOWPayments ---------------------------------------------------------------------------

_JSON_NUMBER = re.compile(r"-?(?:0|[1-9]\d*)(?:\.\d+)?(?:[eE][+-]?\d+)?")


class RawNumber(str):
    """A JSON number written exactly as this text (`6.35e-05`, `100`, `0.0000635`)."""

    __slots__ = ()

    def __new__(cls, text: str) -> "RawNumber":
        if not _JSON_NUMBER.fullmatch(str(text)):
            raise ValueError(f"not a JSON number token: {text!r}")
        return super().__new__(cls, text)


def nowpayments_serialise(obj, *, sort_keys: bool) -> str:
    """Compact JSON as JavaScript's `JSON.stringify` writes it: numbers only as `int` or
    `RawNumber` tokens (floats are refused), non-ASCII left unescaped; keys sorted at every
    level when `sort_keys`."""
    if isinstance(obj, RawNumber):
        return str(obj)
    if isinstance(obj, str):
        return json.dumps(obj, ensure_ascii=False)
    if obj is None:
        return "null"
    if isinstance(obj, bool):
        return "true" if obj else "false"
    if isinstance(obj, int):
        return str(obj)
    if isinstance(obj, dict):
        items = sorted(obj.items()) if sort_keys else obj.items()
        inner = ",".join(
            json.dumps(str(k), ensure_ascii=False)
            + ":"
            + nowpayments_serialise(v, sort_keys=sort_keys)
            for k, v in items
        )
        return "{" + inner + "}"
    if isinstance(obj, list | tuple):
        return "[" + ",".join(nowpayments_serialise(v, sort_keys=sort_keys) for v in obj) + "]"
    raise TypeError(f"cannot serialise {type(obj).__name__}; use RawNumber for non-integers")


def nowpayments_sign(obj, secret: str) -> str:
    """`x-nowpayments-sig`: hex HMAC-SHA512 of the key-sorted serialisation."""
    text = nowpayments_serialise(obj, sort_keys=True)
    return hmac.new(secret.encode(), text.encode(), hashlib.sha512).hexdigest()


def _nowpayments_request(obj, secret: str) -> tuple[bytes, dict[str, str]]:
    body = nowpayments_serialise(obj, sort_keys=False).encode()
    headers = {
        "Content-Type": "application/json",
        "x-nowpayments-sig": nowpayments_sign(obj, secret),
    }
    return body, headers


def nowpayments_send(url: str, obj, *, secret: str, timeout: float = TIMEOUT) -> requests.Response:
    body, headers = _nowpayments_request(obj, secret)
    return requests.post(url, data=body, headers=headers, timeout=timeout)


# --- Coinbase Commerce ---------------------------------------------------------------------

_COINBASE_TYPES = {  # event type -> (timeline status, payment status)
    "charge:created": (None, None),
    "charge:pending": ("PENDING", "PENDING"),
    "charge:confirmed": ("COMPLETED", "CONFIRMED"),
    "charge:failed": ("EXPIRED", None),
    "charge:delayed": ("UNRESOLVED", None),
    "charge:resolved": ("RESOLVED", None),
}


def _coinbase_type(type: str) -> str:
    full = type if type.startswith("charge:") else f"charge:{type}"
    if full not in _COINBASE_TYPES:
        raise ValueError(f"unknown Coinbase event type {type!r}")
    return full


def coinbase_sign(body: bytes, secret: str) -> str:
    return hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def coinbase_event_body(charge: dict, type: str, *, event_id: str | None = None) -> dict:
    """The webhook delivery Coinbase sends for one event about `charge` (copied)."""
    now = _iso()
    return {
        "id": str(uuid.uuid4()),
        "scheduled_for": now,
        "attempt_number": 1,
        "event": {
            "id": event_id or str(uuid.uuid4()),
            "resource": "event",
            "type": _coinbase_type(type),
            "api_version": COINBASE_API_VERSION,
            "created_at": now,
            "data": copy.deepcopy(charge),
        },
    }


def _coinbase_request(body: dict | bytes, secret: str) -> tuple[bytes, dict[str, str]]:
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    headers = {
        "Content-Type": "application/json",
        "X-CC-Webhook-Signature": coinbase_sign(raw, secret),
    }
    return raw, headers


def coinbase_send(
    url: str, body: dict | bytes, *, secret: str, timeout: float = TIMEOUT
) -> requests.Response:
    raw, headers = _coinbase_request(body, secret)
    return requests.post(url, data=raw, headers=headers, timeout=timeout)


# --- shared ----------------------------------------------------------------------------------


def _iso(ms: bool = False) -> str:
    now = datetime.now(UTC)
    if ms:
        return now.strftime("%Y-%m-%dT%H:%M:%S.") + f"{now.microsecond // 1000:03d}Z"
    return now.strftime("%Y-%m-%dT%H:%M:%SZ")


def _positive_decimal(value) -> Decimal | None:
    if isinstance(value, bool) or not isinstance(value, str | int):
        return None
    try:
        number = Decimal(str(value).strip())
    except InvalidOperation:
        return None
    return number if number.is_finite() and number > 0 else None


def _page(title: str, body: str) -> bytes:
    return (
        f'<!doctype html><html><head><meta charset="utf-8"><title>{html.escape(title)}</title>'
        f"</head><body><h1>{html.escape(title)}</h1>{body}</body></html>"
    ).encode()


def _button_form(action: str, hidden: dict[str, str], choice: str, label: str) -> str:
    inputs = "".join(
        f'<input type="hidden" name="{html.escape(k)}" value="{html.escape(v)}">'
        for k, v in hidden.items()
    )
    return (
        f'<form method="post" action="{html.escape(action)}">{inputs}'
        f'<button type="submit" id="{choice}" name="choice" value="{choice}">{label}</button>'
        "</form>"
    )


class FakeBilling(LoopbackServer):
    def __init__(
        self,
        *,
        click_service_id: str,
        click_merchant_id: str,
        click_secret_key: str,
        nowpayments_api_key: str,
        nowpayments_ipn_secret: str,
        coinbase_api_key: str,
        coinbase_webhook_secret: str,
        click_prepare_url: str,
        click_complete_url: str,
        coinbase_webhook_url: str,
        host: str = "127.0.0.1",
        port: int = 0,
        public_url: str | None = None,
    ) -> None:
        self.click_service_id = str(click_service_id)
        self.click_merchant_id = str(click_merchant_id)
        self.click_secret_key = click_secret_key
        self.nowpayments_api_key = nowpayments_api_key
        self.nowpayments_ipn_secret = nowpayments_ipn_secret
        self.coinbase_api_key = coinbase_api_key
        self.coinbase_webhook_secret = coinbase_webhook_secret
        self.click_prepare_url = click_prepare_url
        self.click_complete_url = click_complete_url
        self.coinbase_webhook_url = coinbase_webhook_url
        self.outage = False
        self.sent: list[dict] = []
        self.invoices: dict[str, dict] = {}  # NOWPayments invoice id -> invoice
        self.payments: dict[str, dict] = {}  # NOWPayments payment id -> last IPN object
        self.invoice_payment: dict[str, str] = {}  # invoice id -> payment id
        self.charges: dict[str, dict] = {}  # Coinbase charge id -> charge
        self._click_ids = itertools.count(2_100_000_001)
        self._click_paydoc_ids = itertools.count(4_700_000_001)
        self._invoice_ids = itertools.count(4_500_000_001)
        self._payment_ids = itertools.count(5_000_000_001)
        self._purchase_ids = itertools.count(6_100_000_001)
        self._lock = threading.Lock()
        self._listen(host, port, public_url)

    # --- delivery --------------------------------------------------------------------
    def _deliver(
        self, provider: str, url: str, body: bytes, headers: dict, *, quiet: bool
    ) -> requests.Response | None:
        """POST one callback and record it in `sent`; with `quiet`, a connection error is
        recorded and swallowed (None) instead of raised."""
        record = {
            "provider": provider,
            "url": url,
            "headers": dict(headers),
            "body": body.decode(),
            "status": None,
            "json": None,
            "text": None,
            "error": None,
        }
        try:
            response = requests.post(url, data=body, headers=headers, timeout=TIMEOUT)
        except requests.RequestException as exc:
            record["error"] = repr(exc)
            with self._lock:
                self.sent.append(record)
            if quiet:
                return None
            raise
        record["status"], record["text"] = response.status_code, response.text
        with contextlib.suppress(ValueError):
            record["json"] = response.json()
        with self._lock:
            self.sent.append(record)
        return response

    # --- Click -----------------------------------------------------------------------
    def click_pay(self, merchant_trans_id: str, amount: str, *, cancel: bool = False) -> dict:
        """Send prepare and, if it answers `error == 0`, complete (carrying -5017 when
        `cancel`). Returns both JSON answers (None when absent or not JSON)."""
        return self._click_pay(merchant_trans_id, amount, cancel=cancel, quiet=False)

    def _click_pay(self, merchant_trans_id: str, amount: str, *, cancel: bool, quiet: bool) -> dict:
        with self._lock:
            click_trans_id = str(next(self._click_ids))
            paydoc_id = str(next(self._click_paydoc_ids))
        common = {
            "secret_key": self.click_secret_key,
            "service_id": self.click_service_id,
            "click_trans_id": click_trans_id,
            "click_paydoc_id": paydoc_id,
            "merchant_trans_id": str(merchant_trans_id),
            "amount": str(amount),
        }
        prepare = self._click_post(
            self.click_prepare_url, click_fields(**common, action="0"), quiet
        )
        complete = None
        if prepare is not None and _error_is_zero(prepare):
            error, note = CLICK_CANCELLED if cancel else ("0", "Success")
            fields = click_fields(
                **common,
                action="1",
                merchant_prepare_id=str(prepare.get("merchant_prepare_id", "")),
                error=error,
                error_note=note,
            )
            complete = self._click_post(self.click_complete_url, fields, quiet)
        return {"prepare": prepare, "complete": complete, "click_trans_id": click_trans_id}

    def _click_post(self, url: str, fields: dict, quiet: bool) -> dict | None:
        response = self._deliver("click", url, *_click_request(fields), quiet=quiet)
        try:
            answer = response.json() if response is not None else None
        except ValueError:
            return None
        return answer if isinstance(answer, dict) else None

    # --- NOWPayments -----------------------------------------------------------------
    def nowpayments_create_invoice(self, data) -> tuple[int, dict]:
        if not isinstance(data, dict):
            return 400, _np_error(400, "INVALID_REQUEST_PARAMS", "body must be a JSON object")
        price = data.get("price_amount")
        if isinstance(price, str) and not isinstance(price, RawNumber):
            price = RawNumber(price.strip()) if _JSON_NUMBER.fullmatch(price.strip()) else None
        if not isinstance(price, RawNumber) or _positive_decimal(str(price)) is None:
            return 400, _np_error(400, "INVALID_REQUEST_PARAMS", '"price_amount" must be > 0')
        currency = data.get("price_currency")
        if not isinstance(currency, str) or not currency.strip():
            return 400, _np_error(400, "INVALID_REQUEST_PARAMS", '"price_currency" is required')
        now = _iso(ms=True)
        with self._lock:
            invoice_id = str(next(self._invoice_ids))
        invoice = {
            "id": invoice_id,
            "token_id": "".join(
                secrets.choice(string.ascii_letters + string.digits) for _ in range(9)
            ),
            "order_id": data.get("order_id"),
            "order_description": data.get("order_description"),
            "price_amount": str(price),
            "price_currency": currency,
            "pay_currency": None,
            "ipn_callback_url": data.get("ipn_callback_url"),
            "invoice_url": f"{self.url}/nowpayments/payment/?iid={invoice_id}",
            "success_url": data.get("success_url"),
            "cancel_url": data.get("cancel_url"),
            "created_at": now,
            "updated_at": now,
        }
        with self._lock:
            self.invoices[invoice_id] = invoice
        return 200, invoice

    def nowpayments_ipn(
        self,
        invoice_id: str,
        status: str,
        *,
        actually_paid=None,
        price_amount=None,
    ) -> requests.Response:
        """Send one IPN with `payment_status=status` for the invoice's payment (created on
        first use). `actually_paid` / `price_amount` override those number tokens. Raises
        ValueError when the invoice has no `ipn_callback_url` or no IPN secret is set."""
        return self._nowpayments_ipn(invoice_id, status, actually_paid, price_amount, quiet=False)

    def _nowpayments_ipn(
        self, invoice_id: str, status: str, actually_paid, price_amount, *, quiet: bool
    ) -> requests.Response | None:
        invoice = self.invoices[str(invoice_id)]
        url = invoice.get("ipn_callback_url")
        if not url or not self.nowpayments_ipn_secret:
            # NOWPayments sends no IPN without a callback URL or an IPN secret.
            if quiet:
                return None
            raise ValueError("no ipn_callback_url on the invoice or no IPN secret configured")
        obj = self._nowpayments_payment_update(invoice, status, actually_paid, price_amount)
        body, headers = _nowpayments_request(obj, self.nowpayments_ipn_secret)
        return self._deliver("nowpayments", url, body, headers, quiet=quiet)

    def _nowpayments_payment_update(self, invoice, status, actually_paid, price_amount) -> dict:
        price = (
            RawNumber(str(price_amount)) if price_amount is not None else invoice["price_amount"]
        )
        if actually_paid is not None:
            paid = RawNumber(str(actually_paid))
        else:
            # JavaScript writes tiny numbers without an exponent down to 1e-6 (`0.0000635`);
            # Python writes `6.35e-05`: both styles appear, so a float round trip shows.
            paid = {"finished": "0.0000635", "partially_paid": "0.0000317"}.get(status, "0")
        if status == "finished":
            fiat = str(price)
        elif status == "partially_paid":
            fiat = format(Decimal(str(price)) / 2, "f")
        else:
            fiat = "0"
        with self._lock:
            payment_id = self.invoice_payment.get(invoice["id"])
            if payment_id is None:
                payment_id = str(next(self._payment_ids))
                purchase_id = str(next(self._purchase_ids))
                created_at = _iso(ms=True)
                self.invoice_payment[invoice["id"]] = payment_id
            else:
                previous = self.payments[payment_id]
                purchase_id, created_at = previous["purchase_id"], previous["created_at"]
            obj = {
                "payment_id": int(payment_id),
                "parent_payment_id": None,
                "invoice_id": int(invoice["id"]),
                "payment_status": status,
                "pay_address": "bc1q" + hashlib.sha256(payment_id.encode()).hexdigest()[:38],
                "payin_extra_id": None,
                "price_amount": RawNumber(str(price)),
                "price_currency": invoice["price_currency"].lower(),
                "pay_amount": RawNumber("6.35e-05"),
                "actually_paid": RawNumber(str(paid)),
                "actually_paid_at_fiat": RawNumber(fiat),
                "pay_currency": "btc",
                "order_id": invoice.get("order_id"),
                "order_description": invoice.get("order_description"),
                "purchase_id": purchase_id,
                "outcome_amount": RawNumber("0.0000628"),
                "outcome_currency": "btc",
                "payment_extra_ids": None,
                "fee": {
                    "currency": "btc",
                    "depositFee": 0,
                    "withdrawalFee": RawNumber("1e-06"),
                    "serviceFee": 0,
                },
                "created_at": created_at,
                "updated_at": _iso(ms=True),
            }
            self.payments[payment_id] = obj
            return obj

    def nowpayments_pay(self, invoice_id: str) -> list[requests.Response]:
        """IPNs `waiting`, `confirming`, `finished`, in order; returns the responses."""
        return self._nowpayments_pay(invoice_id, quiet=False)

    def _nowpayments_pay(self, invoice_id: str, *, quiet: bool) -> list:
        return [
            self._nowpayments_ipn(invoice_id, status, None, None, quiet=quiet)
            for status in ("waiting", "confirming", "finished")
        ]

    # --- Coinbase Commerce -----------------------------------------------------------
    def coinbase_create_charge(self, data) -> tuple[int, dict]:
        def invalid(message: str) -> tuple[int, dict]:
            return 400, {"error": {"type": "invalid_request", "message": message}}

        if not isinstance(data, dict):
            return invalid("body must be a JSON object")
        if not isinstance(data.get("name"), str) or not data["name"].strip():
            return invalid("name is required")
        if data.get("pricing_type") != "fixed_price":
            return invalid("pricing_type must be fixed_price")
        local = data.get("local_price")
        if not isinstance(local, dict) or _positive_decimal(local.get("amount")) is None:
            return invalid("local_price.amount must be a positive amount")
        if not isinstance(local.get("currency"), str) or not local["currency"].strip():
            return invalid("local_price.currency is required")
        metadata = data.get("metadata") or {}
        if not isinstance(metadata, dict):
            return invalid("metadata must be an object")
        now = datetime.now(UTC)
        code = "".join(secrets.choice(string.ascii_uppercase + string.digits) for _ in range(8))
        charge = {
            "id": str(uuid.uuid4()),
            "code": code,
            "name": data["name"],
            "description": data.get("description", ""),
            "hosted_url": f"{self.url}/coinbase/pay/{code}",
            "created_at": _iso(),
            "expires_at": (now + timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M:%SZ"),
            "pricing_type": "fixed_price",
            "pricing": {"local": {"amount": str(local["amount"]), "currency": local["currency"]}},
            "metadata": metadata,
            "timeline": [{"status": "NEW", "time": _iso()}],
            "payments": [],
            "redirect_url": data.get("redirect_url"),
            "cancel_url": data.get("cancel_url"),
            "resource": "charge",
        }
        with self._lock:
            self.charges[charge["id"]] = charge
        return 201, charge

    def coinbase_charge(self, id_or_code: str) -> dict | None:
        with self._lock:
            if id_or_code in self.charges:
                return self.charges[id_or_code]
            return next((c for c in self.charges.values() if c["code"] == id_or_code), None)

    def coinbase_event(self, charge_id: str, type: str) -> requests.Response:
        """Apply event `type` (`charge:pending` or `pending`, …) to the charge's timeline
        and payments, then send it signed to the webhook URL."""
        return self._coinbase_event(charge_id, type, quiet=False)

    def _coinbase_event(
        self, charge_id: str, type: str, *, quiet: bool
    ) -> requests.Response | None:
        full = _coinbase_type(type)
        timeline_status, payment_status = _COINBASE_TYPES[full]
        with self._lock:
            charge = self.charges[charge_id]
            now = _iso()
            if timeline_status:
                entry = {"status": timeline_status, "time": now}
                if timeline_status in ("UNRESOLVED", "RESOLVED"):
                    entry["context"] = "DELAYED"
                charge["timeline"].append(entry)
            if payment_status:
                if not charge["payments"]:
                    charge["payments"].append(
                        {
                            "network": "bitcoin",
                            "transaction_id": secrets.token_hex(32),
                            "status": payment_status,
                            "detected_at": now,
                            "value": {
                                "local": dict(charge["pricing"]["local"]),
                                "crypto": {"amount": "0.00063500", "currency": "BTC"},
                            },
                            "block": {"height": None, "hash": None},
                        }
                    )
                else:
                    charge["payments"][0]["status"] = payment_status
            body = coinbase_event_body(charge, full)
        raw, headers = _coinbase_request(body, self.coinbase_webhook_secret)
        return self._deliver("coinbase", self.coinbase_webhook_url, raw, headers, quiet=quiet)

    def coinbase_pay(self, charge_id: str) -> list[requests.Response]:
        """`charge:pending` then `charge:confirmed`; returns the responses."""
        return self._coinbase_pay(charge_id, quiet=False)

    def _coinbase_pay(self, charge_id: str, *, quiet: bool) -> list:
        return [
            self._coinbase_event(charge_id, type, quiet=quiet)
            for type in ("charge:pending", "charge:confirmed")
        ]

    # --- HTTP ------------------------------------------------------------------------
    def _handler(self):
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):  # keep test output clean
                pass

            def _send(self, status: int, data: bytes, content_type: str, extra=()) -> None:
                self.send_response(status)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(data)))
                for name, value in extra:
                    self.send_header(name, value)
                self.end_headers()
                self.wfile.write(data)

            def _json(self, status: int, body) -> None:
                text = body if isinstance(body, str) else json.dumps(body)
                self._send(status, text.encode(), "application/json")

            def _html(self, status: int, title: str, body: str) -> None:
                self._send(status, _page(title, body), "text/html; charset=utf-8")

            def _redirect(self, url: str | None, title: str) -> None:
                if not url:
                    return self._html(200, title, "<p>Done. You can close this page.</p>")
                return self._send(303, b"", "text/plain", [("Location", url)])

            def _body(self) -> bytes:
                length = int(self.headers.get("Content-Length") or 0)
                return self.rfile.read(length) if length else b""

            def _form(self) -> dict[str, str]:
                parsed = parse_qs(self._body().decode(), keep_blank_values=True)
                return {k: v[0] for k, v in parsed.items()}

            def _api_ok(self, provider: str) -> bool:
                """Authenticate, then refuse during an outage; answers the error itself."""
                if provider == "nowpayments":
                    key = self.headers.get("x-api-key", "")
                    if not hmac.compare_digest(key, fake.nowpayments_api_key):
                        self._json(403, _np_error(403, "INVALID_API_KEY", "Invalid api key"))
                        return False
                    if fake.outage:
                        self._json(503, _np_error(503, "SERVICE_UNAVAILABLE", "Unavailable"))
                        return False
                    return True
                key = self.headers.get("X-CC-Api-Key", "")
                if not hmac.compare_digest(key, fake.coinbase_api_key):
                    message = "No such API key."
                    self._json(401, {"error": {"type": "authorization_error", "message": message}})
                    return False
                if fake.outage:
                    self._json(503, {"error": {"type": "service_unavailable", "message": "Down"}})
                    return False
                return True

            def do_GET(self):
                url = urlparse(self.path)
                path, query = url.path.rstrip("/"), parse_qs(url.query)
                parts = path.strip("/").split("/")
                if path == "/click/services/pay":
                    return self._click_page({k: v[0] for k, v in query.items()})
                if path == "/nowpayments/payment":
                    return self._nowpayments_page((query.get("iid") or [""])[0])
                if len(parts) == 4 and parts[:3] == ["nowpayments", "v1", "payment"]:
                    if not self._api_ok("nowpayments"):
                        return None
                    payment = fake.payments.get(parts[3])
                    if payment is None:
                        return self._json(404, _np_error(404, "NOT_FOUND", "Payment not found"))
                    return self._json(200, nowpayments_serialise(payment, sort_keys=False))
                if len(parts) == 3 and parts[:2] == ["coinbase", "charges"]:
                    if not self._api_ok("coinbase"):
                        return None
                    charge = fake.coinbase_charge(parts[2])
                    if charge is None:
                        not_found = {"type": "not_found", "message": "Not found"}
                        return self._json(404, {"error": not_found})
                    with fake._lock:
                        text = json.dumps({"data": charge})
                    return self._json(200, text)
                if len(parts) == 3 and parts[:2] == ["coinbase", "pay"]:
                    return self._coinbase_page(parts[2])
                return self._json(404, {"message": "not found"})

            def do_POST(self):
                path = urlparse(self.path).path.rstrip("/")
                parts = path.strip("/").split("/")
                if path == "/click/services/pay":
                    return self._click_submit(self._form())
                if path == "/nowpayments/payment":
                    return self._nowpayments_submit(self._form())
                if len(parts) == 3 and parts[:2] == ["coinbase", "pay"]:
                    return self._coinbase_submit(parts[2], self._form())
                if path == "/nowpayments/v1/invoice":
                    raw = self._body()
                    if not self._api_ok("nowpayments"):
                        return None
                    try:
                        data = json.loads(raw or b"{}", parse_float=RawNumber, parse_int=RawNumber)
                    except ValueError:
                        return self._json(400, _np_error(400, "INVALID_REQUEST_PARAMS", "bad JSON"))
                    return self._json(*fake.nowpayments_create_invoice(data))
                if path == "/coinbase/charges":
                    raw = self._body()
                    if not self._api_ok("coinbase"):
                        return None
                    if self.headers.get("X-CC-Version") != COINBASE_API_VERSION:
                        message = f"X-CC-Version: {COINBASE_API_VERSION} is required"
                        return self._json(
                            400, {"error": {"type": "invalid_request", "message": message}}
                        )
                    try:
                        data = json.loads(raw or b"{}")
                    except ValueError:
                        data = None
                    status, charge = fake.coinbase_create_charge(data)
                    return self._json(status, {"data": charge} if status == 201 else charge)
                return self._json(404, {"message": "not found"})

            # --- hosted pages --------------------------------------------------------
            def _click_check(self, params: dict) -> str | None:
                if params.get("service_id") != fake.click_service_id:
                    return "Unknown service_id"
                if params.get("merchant_id") != fake.click_merchant_id:
                    return "Unknown merchant_id"
                if _positive_decimal(params.get("amount", "")) is None:
                    return "Incorrect amount"
                if not params.get("transaction_param"):
                    return "transaction_param is required"
                return None

            def _click_page(self, params: dict) -> None:
                problem = self._click_check(params)
                if problem:
                    return self._html(400, "Click", f"<p>{html.escape(problem)}</p>")
                keys = ("service_id", "merchant_id", "amount", "transaction_param", "return_url")
                hidden = {k: params.get(k, "") for k in keys}
                action = "/click/services/pay"
                body = (
                    f'<p>Amount: <span id="amount">{html.escape(params["amount"])}</span> UZS</p>'
                    f'<p>Order: <span id="transaction-param">'
                    f"{html.escape(params['transaction_param'])}</span></p>"
                    + _button_form(action, hidden, "pay", "Pay")
                    + _button_form(action, hidden, "cancel", "Cancel")
                )
                return self._html(200, "Click", body)

            def _click_submit(self, form: dict) -> None:
                problem = self._click_check(form)
                if problem:
                    return self._html(400, "Click", f"<p>{html.escape(problem)}</p>")
                cancel = form.get("choice") == "cancel"
                fake._click_pay(
                    form["transaction_param"], form["amount"], cancel=cancel, quiet=True
                )
                return self._redirect(form.get("return_url"), "Click")

            def _nowpayments_page(self, invoice_id: str) -> None:
                invoice = fake.invoices.get(invoice_id)
                if invoice is None:
                    return self._html(404, "NOWPayments", "<p>Invoice not found</p>")
                amount = f"{invoice['price_amount']} {invoice['price_currency'].upper()}"
                hidden, action = {"iid": invoice_id}, "/nowpayments/payment/"
                body = (
                    f'<p>Amount: <span id="amount">{html.escape(amount)}</span></p>'
                    f"<p>{html.escape(str(invoice.get('order_description') or ''))}</p>"
                    + _button_form(action, hidden, "pay", "Pay")
                    + _button_form(action, hidden, "pay-partial", "Pay partially")
                    + _button_form(action, hidden, "cancel", "Cancel")
                )
                return self._html(200, "NOWPayments", body)

            def _nowpayments_submit(self, form: dict) -> None:
                invoice = fake.invoices.get(form.get("iid", ""))
                if invoice is None:
                    return self._html(404, "NOWPayments", "<p>Invoice not found</p>")
                choice = form.get("choice")
                if choice == "cancel":
                    return self._redirect(invoice.get("cancel_url"), "NOWPayments")
                if choice == "pay-partial":
                    fake._nowpayments_ipn(invoice["id"], "partially_paid", None, None, quiet=True)
                else:
                    fake._nowpayments_pay(invoice["id"], quiet=True)
                return self._redirect(invoice.get("success_url"), "NOWPayments")

            def _coinbase_page(self, code: str) -> None:
                charge = fake.coinbase_charge(code)
                if charge is None:
                    return self._html(404, "Coinbase Commerce", "<p>Charge not found</p>")
                local = charge["pricing"]["local"]
                amount = f"{local['amount']} {local['currency']}"
                action = f"/coinbase/pay/{code}"
                body = (
                    f"<p>{html.escape(charge['name'])}</p>"
                    f'<p>Amount: <span id="amount">{html.escape(amount)}</span></p>'
                    + _button_form(action, {}, "pay", "Pay")
                    + _button_form(action, {}, "cancel", "Cancel")
                )
                return self._html(200, "Coinbase Commerce", body)

            def _coinbase_submit(self, code: str, form: dict) -> None:
                charge = fake.coinbase_charge(code)
                if charge is None:
                    return self._html(404, "Coinbase Commerce", "<p>Charge not found</p>")
                if form.get("choice") == "cancel":
                    return self._redirect(charge.get("cancel_url"), "Coinbase Commerce")
                fake._coinbase_pay(charge["id"], quiet=True)
                return self._redirect(charge.get("redirect_url"), "Coinbase Commerce")

        return Handler


def _np_error(status: int, code: str, message: str) -> dict:
    return {"statusCode": status, "code": code, "message": message}


def _error_is_zero(answer: dict) -> bool:
    try:
        return int(str(answer.get("error"))) == 0
    except ValueError:
        return False
