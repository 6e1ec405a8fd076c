"""A sender of kiosk terminal notifications, signed the Standard Webhooks way."""

import json
import time
import uuid
from datetime import UTC, datetime

import requests
from standardwebhooks.webhooks import Webhook


def kiosk_notification(
    *,
    secret: str,
    reference: str,
    status: str = "paid",
    amount="10.00",
    currency: str = "BRL",
    transaction_id: str | None = None,
    msg_id: str | None = None,
    timestamp: float | None = None,
):
    """(headers, body bytes) of one terminal notification."""
    body = json.dumps(
        {
            "transaction_id": transaction_id or f"tx_{uuid.uuid4().hex[:16]}",
            "reference": reference,
            "status": status,
            "amount": str(amount),
            "currency": currency,
        }
    )
    msg_id = msg_id or f"msg_{uuid.uuid4().hex}"
    ts = int(time.time() if timestamp is None else timestamp)
    signature = Webhook(secret).sign(msg_id, datetime.fromtimestamp(ts, UTC), body)
    headers = {
        "content-type": "application/json",
        "webhook-id": msg_id,
        "webhook-timestamp": str(ts),
        "webhook-signature": signature,
    }
    return headers, body.encode()


def kiosk_send(url: str, *, secret: str, timeout: float = 10, **fields) -> int:
    headers, body = kiosk_notification(secret=secret, **fields)
    return requests.post(url, data=body, headers=headers, timeout=timeout).status_code
