"""The integration self-test: a real kiosk payment through the real webhook URL."""

import time
import uuid

from django.conf import settings

from payments.providers.kiosk import kiosk_send
from payments.services import payment_session_create
from tickets.models import PrintJob, PrintJobStatus, Service, Ticket
from tickets.services import ticket_cancel


def _wait_for(probe, timeout: float, interval: float = 0.1):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = probe()
        if found:
            return found
        time.sleep(interval)
    return None


def integration_self_test(*, base_url: str, timeout: float = 15.0) -> dict:
    """Create a session, send a signed kiosk notification to the webhook URL, wait for
    the ticket and its print job; report each step with its time (seconds)."""
    started = time.monotonic()
    steps = []

    def step(name: str, ok: bool, **info) -> bool:
        steps.append(
            {"step": name, "ok": ok, "seconds": round(time.monotonic() - started, 3), **info}
        )
        return ok

    service = Service.objects.filter(active=True).first()
    if not step("service", service is not None, service=getattr(service, "name", None)):
        return {"ok": False, "steps": steps}
    session = payment_session_create(
        user=None,
        purpose="ticket",
        provider="kiosk",
        idempotency_key=f"selftest-{uuid.uuid4().hex}",
        params={"service": service.pk, "customer_name": "SELF-TEST"},
    ).session
    step("session_created", True, reference=session.reference)
    try:
        status = kiosk_send(
            base_url.rstrip("/") + "/webhooks/kiosk/",
            secret=settings.KIOSK_WEBHOOK_SECRET,
            reference=session.reference,
            amount=str(session.amount),
            currency=session.currency,
            timeout=timeout,
        )
    except Exception as exc:
        step("webhook", False, error=exc.__class__.__name__)
        return {"ok": False, "reference": session.reference, "steps": steps}
    if not step("webhook", status == 200, http_status=status):
        return {"ok": False, "reference": session.reference, "steps": steps}
    ticket = _wait_for(lambda: Ticket.objects.filter(payment_session=session).first(), timeout)
    if not step("ticket_created", ticket is not None, ticket=ticket.code if ticket else None):
        return {"ok": False, "reference": session.reference, "steps": steps}
    done = (PrintJobStatus.PRINTED, PrintJobStatus.FAILED)
    job = _wait_for(
        lambda: PrintJob.objects.filter(ticket=ticket, status__in=done).first(), timeout
    )
    step(
        "printed",
        bool(job and job.status == PrintJobStatus.PRINTED),
        job_status=job.status if job else "not finished",
        error=job.last_error if job else "",
    )
    # The test ticket must not join the real queue, the board or the figures' customers.
    ticket_cancel(ticket_id=ticket.pk)
    return {"ok": all(s["ok"] for s in steps), "reference": session.reference, "steps": steps}
