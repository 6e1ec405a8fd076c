"""Click (click.uz SHOP API): the customer pays on Click's page, then Click calls
`prepare` and `complete` on our side with form-encoded, MD5-signed callbacks.

Click's protocol is synchronous: its answer carries the result, so each callback runs
through the webhook pipeline inside the request. Prepare becomes a "processing"
notification that remembers Click's transaction id, complete an "approved" one, and a
negative `error` a "cancelled" one; `check` refuses with Click's codes what Click must not
be told is fine (unknown order, amount, already paid, not prepared).
"""

import hashlib
import hmac
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from urllib.parse import parse_qsl, urlencode

from django.conf import settings

from core.text import text_storable
from payments.errors import PaymentError, ProviderUnavailable
from payments.providers import (
    InboundRequest,
    MalformedPayload,
    Notification,
    PaymentState,
    ProviderPayment,
    ProviderRefusal,
    SignatureInvalid,
    provider_register,
    return_url,
)
from payments.providers.base import DeliveryResult, ProviderAdapter

PREPARE, COMPLETE = 0, 1

# Click's error codes (SHOP API).
SUCCESS = 0
SIGN_FAILED = -1
BAD_AMOUNT = -2
ACTION_NOT_FOUND = -3
ALREADY_PAID = -4
USER_NOT_FOUND = -5
TRANSACTION_NOT_FOUND = -6
UPDATE_FAILED = -7
BAD_REQUEST = -8
CANCELLED = -9

NOTES = {
    SUCCESS: "Success",
    SIGN_FAILED: "SIGN CHECK FAILED!",
    BAD_AMOUNT: "Incorrect parameter amount",
    ACTION_NOT_FOUND: "Action not found",
    ALREADY_PAID: "Already paid",
    USER_NOT_FOUND: "User does not exist",
    TRANSACTION_NOT_FOUND: "Transaction does not exist",
    UPDATE_FAILED: "Failed to update user",
    BAD_REQUEST: "Error in request from click",
    CANCELLED: "Transaction cancelled",
}

BASE_FIELDS = (
    "click_trans_id",
    "service_id",
    "click_paydoc_id",
    "merchant_trans_id",
    "amount",
    "action",
    "error",
    "error_note",
    "sign_time",
    "sign_string",
)


class ClickError(Exception):
    def __init__(self, code: int, detail: str = "") -> None:
        super().__init__(detail or NOTES[code])
        self.code = code
        self.detail = detail


@dataclass(frozen=True)
class ClickCallback:
    click_trans_id: str
    service_id: str
    merchant_trans_id: str
    merchant_prepare_id: str | None
    amount_text: str
    amount: Decimal
    action: int
    error: int
    error_note: str
    fields: dict


def expected_sign(fields: dict, secret_key: str) -> str:
    """md5 over the raw received strings, in Click's order (complete adds the prepare id)."""
    parts = [
        fields["click_trans_id"],
        fields["service_id"],
        secret_key,
        fields["merchant_trans_id"],
    ]
    if fields.get("action") == str(COMPLETE):
        parts.append(fields.get("merchant_prepare_id", ""))
    parts += [fields["amount"], fields["action"], fields["sign_time"]]
    # MD5 is Click's choice, not ours; the secret key in the middle is what authenticates.
    return hashlib.md5("".join(parts).encode()).hexdigest()  # noqa: S324


def callback_read(body: bytes, content_type: str, *, action: int) -> ClickCallback:
    """Check and read one callback; ClickError with the code Click expects otherwise.

    Order: unreadable or missing parameters (−8), signature (−1), wrong action for this
    URL (−3), unreadable amount (−2)."""
    if "application/x-www-form-urlencoded" not in (content_type or "").lower():
        raise ClickError(BAD_REQUEST, "not form-encoded")
    try:
        pairs = parse_qsl(body.decode("utf-8"), keep_blank_values=True, strict_parsing=False)
    except (UnicodeDecodeError, ValueError) as exc:
        raise ClickError(BAD_REQUEST, "unreadable body") from exc
    fields: dict[str, str] = {}
    for name, value in pairs:
        if name in fields:
            raise ClickError(BAD_REQUEST, f"repeated parameter {name[:30]}")
        if not text_storable(value):
            raise ClickError(BAD_REQUEST, f"unreadable parameter {name[:30]}")
        fields[name] = value
    required = list(BASE_FIELDS) + (["merchant_prepare_id"] if action == COMPLETE else [])
    # error_note may be empty; everything else must be present and non-empty.
    missing = [n for n in required if n not in fields or (fields[n] == "" and n != "error_note")]
    if missing:
        raise ClickError(BAD_REQUEST, f"missing parameters: {', '.join(missing)}")
    secret = settings.CLICK_SECRET_KEY
    if not secret:
        raise ClickError(SIGN_FAILED, "CLICK_SECRET_KEY is not configured")
    signed = expected_sign(fields, secret)
    if not hmac.compare_digest(signed, fields["sign_string"].lower()):
        raise ClickError(SIGN_FAILED, "sign_string does not match")
    if settings.CLICK_SERVICE_ID and fields["service_id"] != settings.CLICK_SERVICE_ID:
        raise ClickError(SIGN_FAILED, "another service_id")
    if fields["action"] != str(action):
        raise ClickError(ACTION_NOT_FOUND, "action does not match this URL")
    try:
        amount = Decimal(fields["amount"])
        if not amount.is_finite() or amount <= 0:
            raise InvalidOperation
    except InvalidOperation as exc:
        raise ClickError(BAD_AMOUNT, "amount is not a number") from exc
    try:
        error = int(fields["error"])
    except ValueError as exc:
        raise ClickError(BAD_REQUEST, "error is not a number") from exc
    return ClickCallback(
        click_trans_id=fields["click_trans_id"][:100],
        service_id=fields["service_id"],
        merchant_trans_id=fields["merchant_trans_id"][:64],
        merchant_prepare_id=fields.get("merchant_prepare_id"),
        amount_text=fields["amount"],
        amount=amount,
        action=action,
        error=error,
        error_note=fields.get("error_note", "")[:200],
        fields={k: v for k, v in fields.items() if k != "sign_string"},
    )


def answer(callback_fields: dict, code: int, **ids) -> dict:
    """Click's JSON answer; ids are merchant_prepare_id or merchant_confirm_id."""

    def as_int(value):
        text = str(value or "")
        return int(text) if text.lstrip("-").isdigit() and len(text) < 19 else text

    body = {
        "click_trans_id": as_int(callback_fields.get("click_trans_id")),
        "merchant_trans_id": str(callback_fields.get("merchant_trans_id", ""))[:64],
    }
    body.update({name: value for name, value in ids.items() if value is not None})
    body.update({"error": code, "error_note": NOTES[code]})
    return body


def _lenient_fields(body: bytes) -> dict:
    """The form's fields as far as they can be read, for answering a refused callback."""
    try:
        return dict(parse_qsl(body.decode("utf-8", "replace"), keep_blank_values=True))
    except ValueError:
        return {}


# A refusal's code → how the delivery is kept in the webhook log.
REFUSAL_STATUS = {
    ALREADY_PAID: "duplicate",
    USER_NOT_FOUND: "ignored",
    TRANSACTION_NOT_FOUND: "ignored",
    CANCELLED: "processed",
}


def _refuse(code: int, detail: str = "") -> ProviderRefusal:
    return ProviderRefusal(code, detail or NOTES[code], status=REFUSAL_STATUS.get(code, "rejected"))


class ClickAdapter(ProviderAdapter):
    name = "click"
    currencies = ("UZS",)
    synchronous = True

    @staticmethod
    def _read(request: InboundRequest) -> ClickCallback:
        action = COMPLETE if request.endpoint.endswith("complete") else PREPARE
        return callback_read(request.body, request.header("content-type") or "", action=action)

    def verify(self, request: InboundRequest) -> None:
        try:
            self._read(request)
        except ClickError as exc:
            error = SignatureInvalid if exc.code == SIGN_FAILED else MalformedPayload
            raise error(f"click {exc.code}: {exc}") from exc

    def parse(self, request: InboundRequest) -> Notification:
        try:
            callback = self._read(request)
        except ClickError as exc:
            raise MalformedPayload(f"click {exc.code}: {exc}") from exc
        if callback.error < 0:
            state = PaymentState.CANCELLED
        elif callback.action == COMPLETE:
            state = PaymentState.APPROVED
        else:
            state = PaymentState.PROCESSING
        return Notification(
            reference=callback.merchant_trans_id,
            provider_payment_id=callback.click_trans_id,
            state=state,
            amount=callback.amount,
            currency="UZS",
            provider_status=f"{'complete' if callback.action else 'prepare'}:{callback.error}",
            raw={
                "action": callback.action,
                "error": callback.error,
                "merchant_prepare_id": callback.merchant_prepare_id,
                "fields": callback.fields,
            },
            replaces_payment_id=callback.action == PREPARE,
        )

    def check(self, notification: Notification, session) -> None:
        """Click's order checks, in its order: the order exists (−5), complete names the
        prepared transaction (−6), a cancel of an open order goes ahead (answered −9),
        then paid (−4), closed (−9), amount (−2)."""
        if session is None or session.provider != self.name:
            raise _refuse(USER_NOT_FOUND, "unknown merchant_trans_id")
        if notification.raw["action"] == COMPLETE:
            prepared = notification.raw["merchant_prepare_id"] == str(session.pk) and (
                session.provider_payment_id == notification.provider_payment_id
            )
            if not prepared:
                raise _refuse(TRANSACTION_NOT_FOUND, "unknown merchant_prepare_id")
        if notification.state == PaymentState.CANCELLED and session.is_open:
            return
        if session.status in ("completed", "refunded"):
            raise _refuse(ALREADY_PAID)
        if not session.is_open:
            raise _refuse(CANCELLED, f"the session is {session.status}")
        if notification.amount != session.amount or session.currency != "UZS":
            raise _refuse(BAD_AMOUNT, f"amount {notification.amount}, expected {session.amount}")

    def answer(self, result: DeliveryResult) -> tuple[int, dict]:
        """Always HTTP 200: Click reads its own error codes."""
        notification = result.notification
        fields = notification.raw["fields"] if notification else {}
        ids = {}
        if result.provider_code is not None:
            code = result.provider_code
        elif result.status == "failed" or notification is None:
            code = UPDATE_FAILED
        elif result.status == "ignored":
            code = USER_NOT_FOUND
        elif notification.state == PaymentState.CANCELLED:
            code = CANCELLED
        elif notification.raw["action"] == COMPLETE and result.outcome == "already_processed":
            code = ALREADY_PAID
        else:
            code = SUCCESS
            name = "merchant_confirm_id" if notification.raw["action"] else "merchant_prepare_id"
            ids[name] = result.session_pk
        return 200, answer(fields, code, **ids)

    def refusal(self, request, status, reason, exc) -> tuple[int, dict]:
        """Refused at intake (signature, unreadable, wrong method): HTTP 200 with Click's
        code, so Click does not read an HTTP error as an outage."""
        cause = exc.__cause__ if exc is not None else None
        code = cause.code if isinstance(cause, ClickError) else BAD_REQUEST
        fields = _lenient_fields(request.body) if request is not None else {}
        return 200, answer(fields, code)

    def create_payment(self, session, **kwargs) -> ProviderPayment:
        """No API call: Click's payment page takes the order in its query string."""
        if session.currency not in self.currencies:
            raise PaymentError(
                "Click takes payments in UZS only.", code="provider_currency_unsupported"
            )
        if not (settings.CLICK_SERVICE_ID and settings.CLICK_MERCHANT_ID):
            raise ProviderUnavailable(
                "Click is not configured (CLICK_SERVICE_ID, CLICK_MERCHANT_ID)."
            )
        query = urlencode(
            {
                "service_id": settings.CLICK_SERVICE_ID,
                "merchant_id": settings.CLICK_MERCHANT_ID,
                "amount": f"{session.amount:.2f}",
                "transaction_param": session.reference,
                "return_url": return_url(session, "merchant_trans_id"),
            }
        )
        return ProviderPayment("", {"redirect_url": f"{settings.CLICK_PAY_URL}?{query}"})


adapter = ClickAdapter()
provider_register(adapter)
