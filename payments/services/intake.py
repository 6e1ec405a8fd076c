"""Webhook intake: answer the provider as soon as its message is safely stored.

For each request to a webhook URL (`payments/webhooks.py`):

1. the body is capped, and the provider's adapter verifies the signature first;
2. a refused request (wrong method, too large, bad signature, unreadable) is answered 4xx
   at once and only counted (`payments.services.refusals`: one row per provider, reason,
   address and hour, with a hash and at most the first 1 KB of body and of headers), never
   stored whole, and logged once per hour rather than line by line;
3. a valid one is stored with one INSERT (committed at once; the provider's event id is
   unique per provider, so a repeat is refused by the database and answered as a
   duplicate), the workers are woken (`payments.services.wake`) and the provider gets 2xx;
4. a synchronous protocol (Click), whose answer carries the result, processes its one
   delivery right away through the workers' own code and answers with the result.

Any parse error is a 400, never a 500. What happens next is in
`payments.services.deliveries`.
"""

import logging
from dataclasses import dataclass
from urllib.parse import parse_qsl

from django.conf import settings
from django.db import DatabaseError, IntegrityError, connection, transaction
from django.utils import timezone

from payments.models import DeliveryStatus, WebhookDelivery
from payments.providers import InboundRequest, MalformedPayload, SignatureInvalid, provider_get
from payments.services.deliveries import delivery_process_now, lease
from payments.services.group_commit import intake_writer
from payments.services.refusals import clean_headers, refusal_record
from payments.services.wake import deliveries_wake

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Answer:
    status: int
    body: dict


def _insert(fields: dict, *, grouped: bool) -> WebhookDelivery | None:
    """One INSERT, committed at once: with `grouped` (`_group_commit_applies`), shared with
    the deliveries arriving together (`payments.services.group_commit`), otherwise its own
    (autocommit). Inside a
    caller's transaction (a test, a script) it goes in a savepoint, so a refused duplicate
    leaves that transaction usable. A repeat is None (grouped) or IntegrityError."""
    if grouped:
        delivery = WebhookDelivery(**fields)
        return delivery if intake_writer.store(delivery) is not None else None
    if connection.in_atomic_block:
        with transaction.atomic():
            return WebhookDelivery.objects.create(**fields)
    return WebhookDelivery.objects.create(**fields)


def _group_commit_applies(fields: dict) -> bool:
    """Group commit needs PostgreSQL, no transaction of the caller's (its row would commit
    apart from it) and an event id (a repeat is known by it)."""
    return (
        settings.WEBHOOK_GROUP_COMMIT
        and connection.vendor == "postgresql"
        and not connection.in_atomic_block
        and bool(fields["event_id"])
    )


def webhook_receive(
    *,
    provider: str,
    endpoint: str,
    method: str,
    headers: dict[str, str],
    query_string: str,
    body: bytes,
    body_size: int,
    cap: int,
    remote_addr: str | None,
) -> Answer:
    """Take in one request to a webhook URL and say what to answer."""
    adapter = provider_get(provider)
    request = InboundRequest(
        headers={name.lower(): str(value) for name, value in headers.items()},
        query=dict(parse_qsl(query_string, keep_blank_values=True)),
        body=body,
        received_at=timezone.now(),
        endpoint=endpoint,
    )

    def refuse(status: int, reason: str, exc: Exception | None = None) -> Answer:
        answer = Answer(*adapter.refusal(request if exc else None, status, reason, exc))
        refusal_record(
            provider=provider,
            endpoint=endpoint,
            reason=reason,
            status=answer.status,  # what the provider was told (Click: always 200)
            remote_addr=remote_addr,
            body=body,
            body_size=body_size,
            headers=headers,
            detail=f"{exc.__class__.__name__}: {exc}" if exc is not None else "",
        )
        return answer

    if method != "POST":
        return refuse(405, "method not allowed")
    if body_size > cap:
        return refuse(413, "body too large")
    try:
        adapter.verify(request)
    except SignatureInvalid as exc:
        return refuse(401, "invalid signature", exc)
    except Exception as exc:  # a body the signature check cannot even read
        return refuse(400, "malformed payload", exc)
    try:
        event_id = adapter.event_id(request)[:120]
        notification = adapter.parse(request)
    except Exception as exc:  # nesting, encoding, types: whatever it is, the sender's fault
        if not isinstance(
            exc, MalformedPayload | ValueError | TypeError | RecursionError | UnicodeError
        ):
            logger.info("webhook %s: unreadable payload", provider, exc_info=True)
        return refuse(400, "malformed payload", exc)
    now = timezone.now()
    synchronous = adapter.synchronous and notification is not None
    fields = {
        "provider": provider,
        "endpoint": endpoint,
        "received_at": request.received_at,
        "remote_addr": remote_addr or None,
        "headers": clean_headers(headers),
        "query_string": query_string[:4000],
        "body": body,
        "body_size": body_size,
        "signature_valid": True,
        "event_id": event_id,
    }
    if notification is None:
        fields.update(
            status=DeliveryStatus.IGNORED,
            response_status=200,
            processed_at=now,
            error="not a payment notification",
        )
    elif synchronous:
        # Processed in this request: held by it, as a worker holds its claims.
        fields.update(next_attempt_at=now + lease(), claimed_by="intake")
    grouped = not synchronous and _group_commit_applies(fields)
    try:
        delivery = _insert(fields, grouped=grouped)
    except IntegrityError:
        delivery = None  # a repeat, or a row the database refused for itself
    except DatabaseError:
        logger.exception("webhook %s could not be stored", provider)
        return Answer(503, {"error": "temporarily unavailable, retry later"})
    if delivery is None:
        original = (
            WebhookDelivery.objects.filter(
                provider=provider, event_id=event_id, replay_of__isnull=True
            )
            .values_list("pk", flat=True)
            .first()
        )
        if original is None:
            # Not stored, and not a repeat either: never answer "duplicate" for a
            # notification that is nowhere (the provider would stop sending it).
            logger.error("webhook %s (event %s) refused by the database", provider, event_id[:80])
            return Answer(503, {"error": "temporarily unavailable, retry later"})
        refusal_record(
            provider=provider,
            endpoint=endpoint,
            reason="duplicate event",
            status=200,
            remote_addr=remote_addr,
            body=b"",
            body_size=body_size,
            headers={},
            detail=f"event {event_id[:80]} is delivery {original}",
        )
        return Answer(200, {"status": "duplicate", "delivery": original})
    if synchronous:
        return Answer(*adapter.answer(delivery_process_now(delivery)))
    if notification is not None and not grouped:
        deliveries_wake()  # (a group wakes the workers once, when it commits)
    status = "ignored" if notification is None else "accepted"
    return Answer(200, {"status": status, "delivery": delivery.pk})
