"""The catalogue of the events Confirma publishes (config/asyncapi.py makes it a document).

Every event reaches a screen as one JSON frame on the WebSocket `/ws/events/`:
`{"id": <cursor>, "type": "<event type>", "payload": {…}, "at": "<ISO 8601 time>"}`. An
entry here gives each event type its audiences (who receives it), the JSON Schema of its
payload, an example, and the names front ends used for it before Confirma. The tests publish
events through the real services and check every one against these schemas, and fail when
code publishes a type this catalogue does not list (tests/notifications/test_event_catalogue.py).

The AsyncAPI document built from it is served at /api/events/asyncapi.json, beside the
OpenAPI schema.
"""

from dataclasses import dataclass

from orders.models import OrderStatus, PaymentMethod
from payments.models import PaymentStatus
from subscriptions.models import SubscriptionStatus, UsageStatus
from tickets.models import TicketStatus

CATALOGUE_VERSION = "1.0.0"


@dataclass(frozen=True)
class EventEntry:
    type: str
    audiences: tuple[str, ...]  # audience patterns: "user:<id>", "role:cashier"…
    summary: str
    payload: dict  # JSON Schema (draft 7) of the payload object
    example: dict
    old_names: tuple[str, ...] = ()


def object_schema(required: dict, optional: dict | None = None) -> dict:
    return {
        "type": "object",
        "required": list(required),
        "properties": {**required, **(optional or {})},
        "additionalProperties": False,
    }


def enum_schema(values, description: str = "") -> dict:
    schema = {"type": "string", "enum": [str(value) for value in values]}
    return {**schema, "description": description} if description else schema


ID = {"type": "integer", "minimum": 1}
TEXT = {"type": "string"}
COUNT = {"type": "integer", "minimum": 1}
DECIMAL = {
    "type": "string",
    "pattern": r"^-?[0-9]+(\.[0-9]+)?$",
    "description": "A decimal amount, as text (never a float).",
}
CURRENCY = {"type": "string", "pattern": "^[A-Z]{3}$", "description": "ISO 4217 code."}
_ISO_TIME = (
    r"^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]+)?([+-][0-9]{2}:[0-9]{2}|Z)$"
)
WHEN = {"type": "string", "format": "date-time", "pattern": _ISO_TIME}
MAYBE_WHEN = {"type": ["string", "null"], "format": "date-time", "pattern": _ISO_TIME}
PURPOSES = ("wallet_topup", "machine_session", "subscription", "ticket", "order")

# --- Payments ------------------------------------------------------------------------------

PAYMENT_AUDIENCES = ("user:<id>", "payment:<reference>")
_PAYMENT = {
    "reference": {**TEXT, "description": "The payment session's public reference."},
    "purpose": enum_schema(PURPOSES, "What the payment pays for."),
    "status": enum_schema(PaymentStatus.values),
    "amount": DECIMAL,
    "currency": CURRENCY,
}


def _payment_example(status: str, **extra) -> dict:
    return {
        "reference": "ps_8kQ2vX7mN4rT1wZ9",
        "purpose": "machine_session",
        "status": status,
        "amount": "12.00",
        "currency": "BRL",
        **extra,
    }


def _payment_event(type_, summary, status, extra=None, optional=None, example=None, **kw):
    return EventEntry(
        type=type_,
        audiences=PAYMENT_AUDIENCES,
        summary=summary + " Sent to the paying user (when logged in) and to whoever holds "
        "the payment's token (a kiosk or a waiting page).",
        payload=object_schema({**_PAYMENT, **(extra or {})}, optional),
        example=_payment_example(status, **(example or {})),
        **kw,
    )


# What a payment for a plan does to the subscription (subscriptions.services.plans).
CHANGES = ["activated", "renewed", "upgraded", "downgraded", "plan_changed"]

PAYMENT_EVENTS = [
    _payment_event(
        "payment.processing",
        "The provider has the payment and is processing it (crypto waiting for the chain).",
        "processing",
    ),
    _payment_event(
        "payment.confirmed",
        "The money arrived and the payment is completed; `fulfilled` says whether what it "
        "pays for was delivered too (false: staff are alerted and the reconciler retries).",
        "completed",
        extra={"fulfilled": {"type": "boolean"}},
        example={"fulfilled": True},
        old_names=("payment-confirmed",),
    ),
    _payment_event(
        "payment.review",
        "Money arrived but needs staff before anything is delivered: a wrong amount, a "
        "second payment for a completed session, or a payment after the session closed.",
        "completed",
        extra={"reason": enum_schema(["mismatch", "duplicate_payment", "late"])},
        example={"reason": "mismatch"},
    ),
    _payment_event(
        "payment.refunded",
        "A completed payment was refunded or charged back; `credit_returned` when wallet "
        "credit went back to the wallet.",
        "refunded",
        optional={"reason": enum_schema(["credit_returned"])},
    ),
    _payment_event(
        "payment.partially_paid",
        "Part of a crypto payment arrived: held for staff (accept it or refund it), the "
        "customer told what arrived and what is missing, in the coin paid.",
        "processing",
        extra={"paid": TEXT, "due": TEXT, "missing": TEXT, "coin": TEXT},
        example={"paid": "0.0000317", "due": "0.0000635", "missing": "0.0000318", "coin": "BTC"},
    ),
    _payment_event("payment.failed", "The provider refused or failed the payment.", "failed"),
    _payment_event("payment.cancelled", "The payment was cancelled.", "cancelled"),
    _payment_event("payment.expired", "The session expired before it was paid.", "expired"),
]

# --- Restaurant orders -------------------------------------------------------------------------

ORDER_EVENTS = [
    EventEntry(
        type="order.updated",
        audiences=("role:cashier", "role:waiter", "role:kitchen"),
        summary="An order changed: its status, or its payment method. Dashboards re-fetch "
        "the order.",
        payload=object_schema(
            {
                "order": ID,
                "status": enum_schema(OrderStatus.values),
                "table": TEXT,
                "total": DECIMAL,
                "currency": CURRENCY,
                "method": enum_schema(["", *PaymentMethod.values], "Empty until a proof is sent."),
                "at": WHEN,
            }
        ),
        example={
            "order": 41,
            "status": "awaiting_verification",
            "table": "Mesa 4",
            "total": "225.00",
            "currency": "MXN",
            "method": "transfer",
            "at": "2026-12-06T20:14:03.120000+00:00",
        },
        old_names=("order_updated",),
    ),
    EventEntry(
        type="payment.verification_pending",
        audiences=("role:cashier",),
        summary="A waiter sent a payment proof for an order: the cashier verifies it. "
        "`action` is `resubmitted` (and `attempt` above 1) when it follows a rejection.",
        payload=object_schema(
            {
                "order": ID,
                "table": TEXT,
                "method": enum_schema(PaymentMethod.values),
                "total": DECIMAL,
                "currency": CURRENCY,
                "action": enum_schema(["submitted", "resubmitted"]),
                "attempt": COUNT,
                "proof": ID,
            }
        ),
        example={
            "order": 41,
            "table": "Mesa 4",
            "method": "transfer",
            "total": "225.00",
            "currency": "MXN",
            "action": "resubmitted",
            "attempt": 2,
            "proof": 77,
        },
        old_names=("payment_verification_pending",),
    ),
    EventEntry(
        type="payment.rejected",
        audiences=("user:<id>",),
        summary="The cashier rejected a payment proof; sent to the order's waiter.",
        payload=object_schema({"order": ID, "table": TEXT, "reason": TEXT, "attempt": COUNT}),
        example={"order": 41, "table": "Mesa 4", "reason": "Amount does not match", "attempt": 1},
    ),
]

# --- Subscriptions and machines ------------------------------------------------------------------

_SUBSCRIPTION = {
    "status": enum_schema(SubscriptionStatus.values),
    "plan": {"type": ["string", "null"], "description": "The plan's code."},
    "plan_name": {"type": ["string", "null"]},
    "tier": TEXT,
    "current_period_start": MAYBE_WHEN,
    "current_period_end": MAYBE_WHEN,
}
_SUBSCRIPTION_EXAMPLE = {
    "status": "active",
    "plan": "pro-usd",
    "plan_name": "Pro",
    "tier": "pro",
    "current_period_start": "2026-12-06T10:00:00+00:00",
    "current_period_end": "2027-01-05T10:00:00+00:00",
}


def _subscription_event(type_, summary, extra=None, optional=None, example=None):
    return EventEntry(
        type=type_,
        audiences=("user:<id>",),
        summary=summary,
        payload=object_schema({**_SUBSCRIPTION, **(extra or {})}, optional),
        example={**_SUBSCRIPTION_EXAMPLE, **(example or {})},
    )


_USAGE = {
    "usage_session": ID,
    "machine": {**TEXT, "description": "The machine's code."},
    "machine_name": TEXT,
    "minutes": COUNT,
    "status": enum_schema(UsageStatus.values),
    "started_at": MAYBE_WHEN,
    "ends_at": MAYBE_WHEN,
}
_USAGE_EXAMPLE = {
    "usage_session": 310,
    "machine": "WASH-03",
    "machine_name": "Lavadora 3",
    "minutes": 30,
    "status": "active",
    "started_at": "2026-12-06T10:00:00+00:00",
    "ends_at": "2026-12-06T10:30:00+00:00",
}


def _usage_event(type_, summary, extra=None, example=None):
    return EventEntry(
        type=type_,
        audiences=("user:<id>",),
        summary=summary,
        payload=object_schema({**_USAGE, **(extra or {})}),
        example={**_USAGE_EXAMPLE, **(example or {})},
    )


SUBSCRIPTION_EVENTS = [
    _subscription_event(
        "subscription.activated",
        "A payment (or staff) activated or extended the user's subscription; `kind` is "
        "`activated`, `renewed` (extended from its current end), `upgraded`, `downgraded` "
        "or `plan_changed` (a new period from now, unused days credited), or `manual` (by "
        "staff, with `change` saying which of the others it was).",
        extra={"kind": enum_schema([*CHANGES, "manual"])},
        optional={
            "reference": {**TEXT, "description": "The payment, unless manual."},
            "change": enum_schema(CHANGES),
        },
        example={"kind": "activated", "reference": "ps_8kQ2vX7mN4rT1wZ9"},
    ),
    _subscription_event(
        "subscription.payment_held",
        "A payment for the subscription arrived but is held for staff (wrong amount, late).",
        extra={"reference": TEXT},
        example={"reference": "ps_8kQ2vX7mN4rT1wZ9"},
    ),
    _subscription_event(
        "subscription.deactivated",
        "Staff deactivated the subscription.",
        example={"status": "cancelled"},
    ),
    _subscription_event(
        "subscription.expired",
        "The subscription's period ended.",
        example={"status": "expired"},
    ),
    _usage_event(
        "machine_session.activated",
        "Paid machine time started; the page shows the countdown.",
        extra={"reference": TEXT},
        example={"reference": "ps_8kQ2vX7mN4rT1wZ9"},
    ),
    _usage_event("machine_session.extended", "Staff added minutes to the machine time."),
    _usage_event(
        "machine_session.completed",
        "The machine time ended (time up, or ended by staff).",
        example={"status": "completed"},
    ),
    EventEntry(
        type="machine.activate",
        audiences=("machine:<id>",),
        summary="Sent to the machine's controller: switch on until `ends_at`.",
        payload=object_schema({"usage_session": ID, "ends_at": WHEN}),
        example={"usage_session": 310, "ends_at": "2026-12-06T10:30:00+00:00"},
    ),
    EventEntry(
        type="machine.deactivate",
        audiences=("machine:<id>",),
        summary="Sent to the machine's controller: switch off now.",
        payload=object_schema(
            {"usage_session": ID, "reason": enum_schema(["time_up", "ended_by_staff"])}
        ),
        example={"usage_session": 310, "reason": "time_up"},
    ),
]

# --- Kiosk tickets -----------------------------------------------------------------------------

_TICKET = {
    "ticket": ID,
    "code": {**TEXT, "description": "What the ticket and the display board show (A-007)."},
    "service": TEXT,
    "service_id": ID,
    "status": enum_schema(TicketStatus.values),
    "desk": {**TEXT, "description": "Where the customer goes; empty until called."},
    "reference": {**TEXT, "description": "The reference of the payment it was bought with."},
}
_TICKET_EXAMPLE = {
    "ticket": 512,
    "code": "A-007",
    "service": "Emissão de 2ª via",
    "service_id": 3,
    "status": "in_queue",
    "desk": "",
    "reference": "ps_8kQ2vX7mN4rT1wZ9",
}
TICKET_AUDIENCES = ("role:operator", "payment:<reference>")


def _ticket_event(type_, summary, status, audiences=TICKET_AUDIENCES, **example):
    return EventEntry(
        type=type_,
        audiences=audiences,
        summary=summary,
        payload=object_schema(_TICKET),
        example={**_TICKET_EXAMPLE, "status": status, **example},
    )


TICKET_EVENTS = [
    _ticket_event("ticket.created", "A paid kiosk session made its queue ticket.", "paid"),
    _ticket_event("ticket.printed", "The ticket was printed; it waits in the queue.", "in_queue"),
    _ticket_event(
        "ticket.print_error",
        "Printing failed after the last attempt; an operator reprints it.",
        "print_error",
    ),
    _ticket_event(
        "ticket.called",
        "An operator called the ticket to a desk (also shown on the display board).",
        "called",
        audiences=(*TICKET_AUDIENCES, "display:<name>"),
        desk="3",
    ),
    _ticket_event("ticket.started", "The service at the desk started.", "in_progress", desk="3"),
    _ticket_event("ticket.completed", "The service ended.", "completed", desk="3"),
    _ticket_event("ticket.no_show", "The customer did not come when called.", "no_show"),
    _ticket_event("ticket.cancelled", "The ticket was cancelled.", "cancelled"),
    EventEntry(
        type="ticket.print_interrupted",
        audiences=("role:operator",),
        summary="A print attempt broke off after the printer may have printed part of the "
        "ticket: it is sent again marked REPRINT.",
        payload=object_schema({**_TICKET, "job": ID, "attempt": COUNT}),
        example={**_TICKET_EXAMPLE, "status": "printing", "job": 88, "attempt": 1},
    ),
]

# --- Alerts --------------------------------------------------------------------------------------

ALERT_EVENTS = [
    EventEntry(
        type="alert.raised",
        audiences=("role:staff", "role:operator"),
        summary="Something needs a person. Staff receive every alert (once per "
        "de-duplication window, `count` says how many times it happened); operators "
        "receive the printer failures of their queue, with the ticket's code.",
        payload={
            "oneOf": [
                object_schema(
                    {
                        "code": TEXT,
                        "message": TEXT,
                        "context": {"type": "object"},
                        "alert": ID,
                        "count": COUNT,
                    }
                ),
                object_schema(
                    {"code": {"const": "ticket.print_error"}, "ticket": TEXT, "error": TEXT}
                ),
            ]
        },
        example={
            "code": "payment.mismatch",
            "message": "The amount paid does not match the session.",
            "context": {"reference": "ps_8kQ2vX7mN4rT1wZ9", "paid": "10.00"},
            "alert": 19,
            "count": 1,
        },
    ),
]

EVENTS: list[EventEntry] = [
    *PAYMENT_EVENTS,
    *ORDER_EVENTS,
    *SUBSCRIPTION_EVENTS,
    *TICKET_EVENTS,
    *ALERT_EVENTS,
]
EVENTS_BY_TYPE: dict[str, EventEntry] = {entry.type: entry for entry in EVENTS}

# Frames the WebSocket sends that are not events of the log (no id; not replayed).
CONTROL_FRAMES = {
    "live": (
        "The connection's live updates are degraded (the page shows it is reconnecting "
        "and the log is read instead) or ok again.",
        {"state": enum_schema(["ok", "degraded"])},
        {"type": "live", "state": "degraded", "at": "2026-12-06T10:00:00+00:00"},
    ),
    "resync": (
        "The client is too far behind to replay: reload the page's state.",
        {},
        {"type": "resync", "at": "2026-12-06T10:00:00+00:00"},
    ),
    "heartbeat": (
        "Sent every EVENTS_HEARTBEAT_SECONDS.",
        {},
        {"type": "heartbeat", "at": "2026-12-06T10:00:00+00:00"},
    ),
    "pong": (
        "The answer to a `ping`.",
        {},
        {"type": "pong", "at": "2026-12-06T10:00:00+00:00"},
    ),
}
