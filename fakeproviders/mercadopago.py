"""A local Mercado Pago API on loopback, speaking the real protocol.

- `POST /v1/payments` (Bearer token, `X-Idempotency-Key` required; the same key returns
  the same payment) creates a pending PIX payment with a valid copy-and-paste code (CRC
  checked) and a QR PNG;
- `GET /v1/payments/<id>` returns it;
- `receive_outside(amount, …)` makes a payment that did not start in Confirma (a static
  QR code, a payment link): approved, with a payer, without our reference;
- `POST /_fake/payments/<id>/<approve|reject|expire|cancel|refund>` (same token) changes
  its status and sends a notification signed the real way (`x-signature`, `x-request-id`)
  to the payment's `notification_url`, and returns what it sent.

`outage = True` makes the API answer 503, to show what happens when the provider is down.
"""

import base64
import contextlib
import hashlib
import hmac
import io
import itertools
import json
import threading
import time
import uuid
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from http.server import BaseHTTPRequestHandler
from urllib.parse import urlparse

import qrcode
import requests

from fakeproviders.pix import pix_code
from fakeproviders.server import LoopbackServer

_NOTIFICATION_IDS = itertools.count(int(time.time() * 1000) % 10**12 * 1000)

ACTIONS = {
    "approve": ("approved", "accredited"),
    "reject": ("rejected", "cc_rejected_other_reason"),
    "expire": ("cancelled", "expired"),
    "cancel": ("cancelled", "by_collector"),
    "refund": ("refunded", "refunded"),
    "pend": ("pending", "pending_waiting_transfer"),
}


def sign_notification(*, secret: str, data_id: str, request_id: str, ts: int) -> str:
    manifest = f"id:{data_id};request-id:{request_id};ts:{ts};"
    digest = hmac.new(secret.encode(), manifest.encode(), hashlib.sha256).hexdigest()
    return f"ts={ts},v1={digest}"


def qr_png_base64(text: str) -> str:
    image = qrcode.make(text, box_size=4, border=2)
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return base64.b64encode(buffer.getvalue()).decode()


class FakeMercadoPago(LoopbackServer):
    def __init__(
        self,
        *,
        access_token: str,
        webhook_secret: str,
        host: str = "127.0.0.1",
        port: int = 0,
        public_url: str | None = None,
    ) -> None:
        self.access_token = access_token
        self.webhook_secret = webhook_secret
        self.payments: dict[str, dict] = {}
        self.by_key: dict[str, str] = {}
        self.outage = False
        self.notification_override: str | None = None
        self.requests_seen: list[tuple[str, str, dict]] = []
        self._ids = itertools.count(1_300_000_001)
        self._lock = threading.Lock()
        self._listen(host, port, public_url)

    # --- the API ---------------------------------------------------------------------
    def create(self, data: dict, idempotency_key: str) -> tuple[int, dict]:
        with self._lock:
            if idempotency_key in self.by_key:
                return 201, self.payments[self.by_key[idempotency_key]]
            errors = []
            try:
                amount = Decimal(str(data.get("transaction_amount")))
                if amount <= 0:
                    errors.append("transaction_amount must be positive")
            except Exception:
                errors.append("transaction_amount is required")
                amount = Decimal(0)
            if data.get("payment_method_id") != "pix":
                errors.append("payment_method_id must be pix")
            if not (data.get("payer") or {}).get("email"):
                errors.append("payer.email is required")
            if errors:
                return 400, {"message": "; ".join(errors), "error": "bad_request", "status": 400}
            payment_id = str(next(self._ids))
            now = datetime.now(UTC)
            expires = data.get("date_of_expiration") or (now + timedelta(hours=24)).isoformat()
            code = pix_code(
                key="confirma-demo@example.com",
                amount=amount,
                name="CONFIRMA DEMO",
                city="SAO PAULO",
                txid=payment_id,
            )
            payment = {
                "id": int(payment_id),
                "status": "pending",
                "status_detail": "pending_waiting_transfer",
                "transaction_amount": float(amount),
                "currency_id": "BRL",
                "description": data.get("description", ""),
                "payment_method_id": "pix",
                "external_reference": data.get("external_reference"),
                "notification_url": data.get("notification_url"),
                "date_created": now.isoformat(),
                "date_of_expiration": expires,
                "payer": {"email": data["payer"]["email"]},
                "point_of_interaction": {
                    "type": "PIX",
                    "transaction_data": {
                        "qr_code": code,
                        "qr_code_base64": qr_png_base64(code),
                        "ticket_url": f"{self.url}/checkout/pix/{payment_id}",
                    },
                },
            }
            self.payments[payment_id] = payment
            self.by_key[idempotency_key] = payment_id
            return 201, payment

    def receive_outside(
        self,
        amount,
        *,
        payer: dict | None = None,
        external_reference: str | None = None,
        notification_url: str | None = None,
        description: str = "PIX",
    ) -> dict:
        """A payment made to this account without Confirma (a static QR code, a payment
        link, the seller's app): approved at once, with the payer Mercado Pago saw and no
        reference of ours (or someone else's). Notify it with `notification()`/`act()`."""
        with self._lock:
            payment_id = str(next(self._ids))
            now = datetime.now(UTC).isoformat()
            payment = {
                "id": int(payment_id),
                "status": "approved",
                "status_detail": "accredited",
                "transaction_amount": float(Decimal(str(amount))),
                "currency_id": "BRL",
                "description": description,
                "payment_method_id": "pix",
                "external_reference": external_reference,
                "notification_url": notification_url,
                "date_created": now,
                "date_approved": now,
                "payer": payer
                or {
                    "id": "1234567890",
                    "email": "maria.silva@example.com",
                    "first_name": "Maria",
                    "last_name": "Silva",
                    "identification": {"type": "CPF", "number": "12345678909"},
                },
            }
            self.payments[payment_id] = payment
            return payment

    def set_status(self, payment_id: str, action: str) -> dict:
        status, detail = ACTIONS[action]
        with self._lock:
            payment = self.payments[str(payment_id)]
            payment["status"], payment["status_detail"] = status, detail
            if status == "approved":
                payment["date_approved"] = datetime.now(UTC).isoformat()
            return payment

    # --- notifications -----------------------------------------------------------------
    def notification(
        self, payment_id: str, *, ts: int | None = None, secret: str | None = None
    ) -> dict:
        """The request Mercado Pago would send for this payment: path+query, headers, body."""
        payment = self.payments[str(payment_id)]
        request_id = str(uuid.uuid4())
        ts = int(time.time()) if ts is None else ts
        body = {
            # Unique per notification, as Mercado Pago's are (intake keys repeats on it).
            "id": next(_NOTIFICATION_IDS),
            "live_mode": False,
            "type": "payment",
            "action": "payment.updated",
            "api_version": "v1",
            "date_created": datetime.now(UTC).isoformat(),
            "user_id": 123456789,
            "data": {"id": str(payment_id)},
        }
        target = self.notification_override or payment.get("notification_url") or ""
        return {
            "url": target,
            "query": {"data.id": str(payment_id), "type": "payment"},
            "headers": {
                "content-type": "application/json",
                "x-request-id": request_id,
                "x-signature": sign_notification(
                    secret=secret or self.webhook_secret,
                    data_id=str(payment_id),
                    request_id=request_id,
                    ts=ts,
                ),
            },
            "body": json.dumps(body),
        }

    def send(self, notification: dict) -> int | None:
        if not notification["url"]:
            return None
        response = requests.post(
            notification["url"],
            params=notification["query"],
            headers=notification["headers"],
            data=notification["body"].encode(),
            timeout=30,
        )
        return response.status_code

    def send_quietly(self, notification: dict) -> None:
        with contextlib.suppress(requests.RequestException):
            self.send(notification)

    def act(self, payment_id: str, action: str, *, send: bool = True) -> dict:
        payment = self.set_status(payment_id, action)
        notification = self.notification(payment_id)
        delivered = self.send(notification) if send else None
        return {"payment": payment, "notification": notification, "delivered": delivered}

    # --- HTTP ----------------------------------------------------------------------------
    def _handler(self):
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):  # keep test output clean
                pass

            def _reply(self, status: int, body: dict) -> None:
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def _authorised(self) -> bool:
                expected = f"Bearer {fake.access_token}"
                if not hmac.compare_digest(self.headers.get("Authorization", ""), expected):
                    self._reply(401, {"message": "invalid access token", "status": 401})
                    return False
                if fake.outage:
                    self._reply(503, {"message": "service unavailable", "status": 503})
                    return False
                return True

            def do_GET(self):
                path = urlparse(self.path).path
                fake.requests_seen.append(
                    ("GET", path, {k.lower(): v for k, v in self.headers.items()})
                )
                if path.startswith("/checkout/pix/"):
                    return self._reply(200, {"message": "Fake PIX checkout"})
                if not self._authorised():
                    return None
                parts = path.strip("/").split("/")
                if len(parts) == 3 and parts[:2] == ["v1", "payments"]:
                    payment = fake.payments.get(parts[2])
                    if payment is None:
                        return self._reply(404, {"message": "Payment not found", "status": 404})
                    return self._reply(200, payment)
                return self._reply(404, {"message": "not found", "status": 404})

            def do_POST(self):
                path = urlparse(self.path).path
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length) if length else b""
                fake.requests_seen.append(
                    ("POST", path, {k.lower(): v for k, v in self.headers.items()})
                )
                if not self._authorised():
                    return None
                try:
                    data = json.loads(raw or b"{}")
                except ValueError:
                    return self._reply(400, {"message": "invalid JSON", "status": 400})
                parts = path.strip("/").split("/")
                if parts == ["v1", "payments"]:
                    key = self.headers.get("X-Idempotency-Key", "")
                    if not 1 <= len(key) <= 64:
                        return self._reply(
                            400, {"message": "X-Idempotency-Key is required", "status": 400}
                        )
                    status, body = fake.create(data, key)
                    return self._reply(status, body)
                if len(parts) == 4 and parts[:2] == ["_fake", "payments"]:
                    payment_id, action = parts[2], parts[3]
                    if payment_id not in fake.payments or action not in ACTIONS:
                        return self._reply(404, {"message": "unknown payment or action"})
                    # Answer first, notify from another thread: the caller may be the very
                    # server the notification goes to.
                    payment = fake.set_status(payment_id, action)
                    notification = fake.notification(payment_id)
                    threading.Thread(
                        target=fake.send_quietly, args=(notification,), daemon=True
                    ).start()
                    return self._reply(202, {"payment": payment, "notification": notification})
                return self._reply(404, {"message": "not found", "status": 404})

        return Handler
