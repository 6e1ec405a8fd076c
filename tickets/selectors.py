"""Reads shared by the operator panel, the display board and the integration status."""

from datetime import timedelta

from django.db.models import Count, Exists, OuterRef
from django.utils import timezone

from payments.models import PaymentSession, PaymentStatus
from tickets.models import PrintJob, Service, Ticket, TicketStatus

HEALTHY, WARNING = 95.0, 80.0


def _with_reprint_marked(tickets):
    """`reprint_marked` on each ticket: one of its print jobs was half-sent and re-sent
    marked REPRINT, so the customer may hold two slips with this number."""
    return tickets.annotate(
        reprint_marked=Exists(PrintJob.objects.filter(ticket=OuterRef("pk"), reprint_marked=True))
    )


def tickets_waiting_by_service() -> list[tuple[Service, list[Ticket]]]:
    waiting = (
        _with_reprint_marked(Ticket.objects)
        .filter(
            status__in=(
                TicketStatus.PAID,
                TicketStatus.PRINTING,
                TicketStatus.IN_QUEUE,
                TicketStatus.PRINT_ERROR,
            )
        )
        .select_related("service")
        .order_by("paid_at", "id")
    )
    by_service: dict[int, list[Ticket]] = {}
    for ticket in waiting:
        by_service.setdefault(ticket.service_id, []).append(ticket)
    return [(s, by_service.get(s.pk, [])) for s in Service.objects.filter(active=True)]


def tickets_at_desks() -> list[Ticket]:
    """Tickets called or being served now."""
    return list(
        _with_reprint_marked(Ticket.objects)
        .filter(status__in=(TicketStatus.CALLED, TicketStatus.IN_PROGRESS))
        .select_related("service")
        .order_by("-called_at")
    )


def tickets_recently_called(*, limit: int = 8) -> list[Ticket]:
    return list(
        Ticket.objects.filter(called_at__isnull=False)
        .select_related("service")
        .order_by("-called_at")[:limit]
    )


def health_status(conversion_percent: float) -> str:
    """≥ 95 % healthy, 80–94 % warning, < 80 % critical."""
    if conversion_percent >= HEALTHY:
        return "healthy"
    return "warning" if conversion_percent >= WARNING else "critical"


def _percentile(values: list[float], fraction: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(fraction * (len(ordered) - 1))))
    return round(ordered[index], 3)


def _timing(values: list[float]) -> dict:
    return {
        "count": len(values),
        "average": round(sum(values) / len(values), 3) if values else None,
        "p95": _percentile(values, 0.95),
    }


def integration_health(*, since=None, missing_limit: int = 100) -> dict:
    """Paid kiosk sessions vs tickets: totals, conversion, timings, health, gaps."""
    since = since or timezone.now() - timedelta(days=1)
    sessions = PaymentSession.objects.filter(purpose="ticket", created_at__gte=since)
    paid = sessions.filter(status__in=(PaymentStatus.COMPLETED, PaymentStatus.REFUNDED))
    totals = sessions.aggregate(n=Count("id"))
    paid_count = paid.count()
    tickets = Ticket.objects.filter(payment_session__in=paid).select_related("payment_session")
    to_ticket, to_print = [], []
    for ticket in tickets.only("created_at", "printed_at", "payment_session__completed_at"):
        completed = ticket.payment_session.completed_at
        if completed is None:
            continue
        to_ticket.append((ticket.created_at - completed).total_seconds())
        if ticket.printed_at:
            to_print.append((ticket.printed_at - completed).total_seconds())
    ticket_count = len(to_ticket)
    conversion = round(100.0 * ticket_count / paid_count, 1) if paid_count else 100.0
    status = health_status(conversion)
    missing = (
        paid.annotate(has_ticket=Exists(Ticket.objects.filter(payment_session=OuterRef("pk"))))
        .filter(has_ticket=False)
        .order_by("completed_at")
    )
    return {
        "since": since.isoformat(),
        "totals": {
            "payment_sessions": totals["n"],
            "paid": paid_count,
            "tickets": ticket_count,
            "conversion_percent": conversion,
        },
        "payment_to_ticket_seconds": _timing(to_ticket),
        "payment_to_printed_seconds": _timing(to_print),
        "status": status,
        "paid_without_ticket": [
            {
                "reference": s.reference,
                "completed_at": s.completed_at.isoformat() if s.completed_at else None,
                "fulfilment_error": s.fulfilment_error,
            }
            for s in missing[:missing_limit]
        ],
    }


def printers_health() -> list[dict]:
    """Each printer with its last success and last error, and jobs not finished."""
    from tickets.models import Printer, PrintJob, PrintJobStatus

    unfinished = dict(
        PrintJob.objects.exclude(status__in=(PrintJobStatus.PRINTED, PrintJobStatus.FAILED))
        .values("printer")
        .annotate(n=Count("id"))
        .values_list("printer", "n")
    )

    def iso(value):
        return value.isoformat() if value else None

    return [
        {
            "id": printer.pk,
            "name": printer.name,
            "enabled": printer.enabled,
            "last_success_at": iso(printer.last_success_at),
            "last_error": printer.last_error[:300],
            "last_error_at": iso(printer.last_error_at),
            "unfinished_jobs": unfinished.get(printer.pk, 0),
            "ok": printer.enabled
            and (
                printer.last_error_at is None
                or (
                    printer.last_success_at is not None
                    and printer.last_success_at > printer.last_error_at
                )
            ),
        }
        for printer in Printer.objects.order_by("name")
    ]
