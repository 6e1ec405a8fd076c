"""Reads shared by the operator panel, the display board and the integration status."""

from datetime import date, datetime, time, timedelta

from django.db.models import Count, Exists, OuterRef, Q
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy, ngettext

from payments.models import PaymentSession, PaymentStatus
from tickets.cpf import name_mask
from tickets.models import Printer, PrintJob, PrintJobStatus, Service, Ticket, TicketStatus

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
    """The display board: each desk's last call today (one number per desk, even for a
    desk whose last customer has left), the most recent first."""
    today = timezone.localdate()
    start = timezone.make_aware(datetime.combine(today, time.min))
    newer_at_desk = Ticket.objects.filter(
        desk=OuterRef("desk"), called_at__gt=OuterRef("called_at")
    )
    return list(
        Ticket.objects.filter(called_at__gte=start)
        .exclude(desk="")
        .exclude(Exists(newer_at_desk))
        .select_related("service")
        .order_by("-called_at", "-id")[:limit]
    )


def tickets_list(
    *,
    statuses: list[str] | None = None,
    service_id: int | None = None,
    day: date | None = None,
    desk: str | None = None,
):
    """Tickets matching every filter given (any of `statuses`), in queue order: paid
    first. A queryset, for the API to page through."""
    tickets = _with_reprint_marked(Ticket.objects).select_related("service", "payment_session")
    if statuses:
        tickets = tickets.filter(status__in=statuses)
    if service_id is not None:
        tickets = tickets.filter(service_id=service_id)
    if day is not None:
        tickets = tickets.filter(day=day)
    if desk is not None:
        tickets = tickets.filter(desk=desk)
    return tickets.order_by("paid_at", "id")


def health_status(conversion_percent: float) -> str:
    """≥ 95 % healthy, 80–94 % warning, < 80 % critical."""
    if conversion_percent >= HEALTHY:
        return "healthy"
    return "warning" if conversion_percent >= WARNING else "critical"


# The kiosk team's thresholds for payment → ticket: ideal under 2 s, acceptable under 5 s,
# a problem over 10 s (between 5 and 10: slow).
TICKET_IDEAL_SECONDS, TICKET_ACCEPTABLE_SECONDS, TICKET_PROBLEM_SECONDS = 2.0, 5.0, 10.0
# What each rating does to the overall health.
RATING_HEALTH = {
    "no_data": "healthy",
    "ideal": "healthy",
    "acceptable": "healthy",
    "ok": "healthy",
    "slow": "warning",
    "degraded": "warning",
    "problem": "critical",
}
SEVERITY = {"healthy": 0, "warning": 1, "critical": 2}


def latency_rating(seconds: float | None) -> str:
    """ideal < 2 s ≤ acceptable < 5 s ≤ slow ≤ 10 s < problem; no_data without a time."""
    if seconds is None:
        return "no_data"
    if seconds < TICKET_IDEAL_SECONDS:
        return "ideal"
    if seconds < TICKET_ACCEPTABLE_SECONDS:
        return "acceptable"
    return "slow" if seconds <= TICKET_PROBLEM_SECONDS else "problem"


def _worst(*statuses: str) -> str:
    return max(statuses, key=SEVERITY.__getitem__)


def _percentile(values: list[float], fraction: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(fraction * (len(ordered) - 1))))
    return round(ordered[index], 3)


def _timing(values: list[float]) -> dict:
    """Count, average, p95 and max, and the p95 rated against the kiosk thresholds."""
    p95 = _percentile(values, 0.95)
    rating = latency_rating(p95)
    return {
        "count": len(values),
        "average": round(sum(values) / len(values), 3) if values else None,
        "p95": p95,
        "max": round(max(values), 3) if values else None,
        "rating": rating,
        "health": RATING_HEALTH[rating],
    }


def printing_health(*, since, now=None) -> dict:
    """Printing rated: `problem` while a ticket paid since `since` is in PRINT_ERROR (a
    customer without paper); `degraded` while an enabled printer's last attempt failed, a
    job is being retried, or a ticket waits for its paper longer than the problem
    threshold; else `ok`."""
    now = now or timezone.now()
    recent = Ticket.objects.filter(paid_at__gte=since)
    print_errors = recent.filter(status=TicketStatus.PRINT_ERROR).count()
    slow_cutoff = now - timedelta(seconds=TICKET_PROBLEM_SECONDS)
    waiting_for_paper = recent.filter(
        status__in=(TicketStatus.PAID, TicketStatus.PRINTING), paid_at__lt=slow_cutoff
    ).count()
    retrying = PrintJob.objects.filter(
        status=PrintJobStatus.QUEUED, attempts__gt=0, created_at__gte=since
    ).count()
    failing = [
        p.name
        for p in Printer.objects.filter(enabled=True, last_error_at__isnull=False).order_by("name")
        if p.last_success_at is None or p.last_success_at < p.last_error_at
    ]
    if print_errors:
        rating = "problem"
    elif failing or retrying or waiting_for_paper:
        rating = "degraded"
    else:
        rating = "ok"
    return {
        "rating": rating,
        "health": RATING_HEALTH[rating],
        "print_errors": print_errors,
        "jobs_retrying": retrying,
        "waiting_for_paper": waiting_for_paper,
        "printers_failing": failing,
    }


def _reasons(conversion: float, status: str, timings: dict, printing: dict) -> list[str]:
    """Why the health is not `healthy`, for people (translated)."""
    reasons = []
    if status != "healthy":
        reasons.append(
            _("Only %(percent)s %% of paid sessions have a ticket.") % {"percent": conversion}
        )
    labels = {
        "payment_to_ticket_seconds": _("Payment → ticket"),
        "payment_to_printed_seconds": _("Payment → printed"),
    }
    for key, timing in timings.items():
        if timing["health"] != "healthy":
            reasons.append(
                _("%(what)s takes %(seconds)s s (p95): %(rating)s.")
                % {
                    "what": labels[key],
                    "seconds": timing["p95"],
                    "rating": RATING_LABELS[timing["rating"]],
                }
            )
    if printing["print_errors"]:
        reasons.append(
            ngettext(
                "%(n)d ticket could not be printed.",
                "%(n)d tickets could not be printed.",
                printing["print_errors"],
            )
            % {"n": printing["print_errors"]}
        )
    if printing["printers_failing"]:
        reasons.append(
            _("Last attempt failed on: %(printers)s.")
            % {"printers": ", ".join(printing["printers_failing"])}
        )
    if printing["jobs_retrying"]:
        reasons.append(
            ngettext(
                "%(n)d print job is being retried.",
                "%(n)d print jobs are being retried.",
                printing["jobs_retrying"],
            )
            % {"n": printing["jobs_retrying"]}
        )
    if printing["waiting_for_paper"]:
        reasons.append(
            ngettext(
                "%(n)d ticket has waited for its paper more than %(seconds)d s.",
                "%(n)d tickets have waited for their paper more than %(seconds)d s.",
                printing["waiting_for_paper"],
            )
            % {"n": printing["waiting_for_paper"], "seconds": TICKET_PROBLEM_SECONDS}
        )
    return reasons


RATING_LABELS = {
    "no_data": gettext_lazy("no data"),
    "ideal": gettext_lazy("ideal"),
    "acceptable": gettext_lazy("acceptable"),
    "slow": gettext_lazy("slow"),
    "problem": gettext_lazy("problem"),
    "ok": gettext_lazy("ok"),
    "degraded": gettext_lazy("degraded"),
}


def _issue(session: PaymentSession) -> dict:
    """One paid kiosk session with no ticket, as the issues list shows it."""
    held = next(
        (
            flag
            for flag in ("amount_mismatch", "late_payment", "refund_due")
            if getattr(session, flag)
        ),
        "",
    )
    paid_at = session.completed_at.isoformat() if session.completed_at else None
    return {
        "session": session.pk,
        "reference": session.reference,
        "provider": session.provider,
        "provider_transaction_id": session.provider_payment_id or "",
        "customer_name": name_mask(str(session.params.get("customer_name") or "")),
        "amount": str(session.paid_amount if session.paid_amount is not None else session.amount),
        "currency": session.paid_currency or session.currency,
        "paid_at": paid_at,
        "error": session.fulfilment_error,
        "held": held,
        # Earlier names of the same fields.
        "completed_at": paid_at,
        "fulfilment_error": session.fulfilment_error,
    }


def paid_without_ticket(*, since, limit: int = 100) -> tuple[list[dict], int]:
    """Completed kiosk sessions with no ticket (oldest first, at most `limit`), and how
    many there are in all: those created since `since`, and those whose fulfilment never
    succeeded whenever paid (found through the unfulfilled-payments index). Refunded ones
    are not listed: their money went back."""
    missing = (
        PaymentSession.objects.filter(purpose="ticket", status=PaymentStatus.COMPLETED)
        .filter(Q(created_at__gte=since) | Q(fulfilled_at__isnull=True))
        .annotate(has_ticket=Exists(Ticket.objects.filter(payment_session=OuterRef("pk"))))
        .filter(has_ticket=False)
    )
    rows = list(missing.order_by("completed_at", "pk")[: limit + 1])
    total = len(rows) if len(rows) <= limit else missing.count()
    return [_issue(s) for s in rows[:limit]], total


def integration_health(*, since=None, missing_limit: int = 100) -> dict:
    """Paid kiosk sessions vs tickets: totals, conversion, timings and printing, each
    rated; the overall health (the worst of them) and why; the paid sessions with no
    ticket."""
    now = timezone.now()
    since = since or now - timedelta(days=1)
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
    conversion_status = health_status(conversion)
    timings = {
        "payment_to_ticket_seconds": _timing(to_ticket),
        "payment_to_printed_seconds": _timing(to_print),
    }
    printing = printing_health(since=since, now=now)
    status = _worst(conversion_status, *(t["health"] for t in timings.values()), printing["health"])
    missing, missing_total = paid_without_ticket(since=since, limit=missing_limit)
    return {
        "since": since.isoformat(),
        "totals": {
            "payment_sessions": totals["n"],
            "paid": paid_count,
            "tickets": ticket_count,
            "conversion_percent": conversion,
        },
        **timings,
        "conversion_status": conversion_status,
        "printing": printing,
        "thresholds_seconds": {
            "ideal": TICKET_IDEAL_SECONDS,
            "acceptable": TICKET_ACCEPTABLE_SECONDS,
            "problem": TICKET_PROBLEM_SECONDS,
        },
        "status": status,
        "reasons": _reasons(conversion, conversion_status, timings, printing),
        "paid_without_ticket": missing,
        "paid_without_ticket_total": missing_total,
    }


def printers_health() -> list[dict]:
    """Each printer with its last success and last error, and jobs not finished."""
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


def services_active() -> list[Service]:
    """The services a kiosk offers."""
    return list(Service.objects.filter(active=True))


def service_active_get(*, service_id: int) -> Service | None:
    return Service.objects.filter(pk=service_id, active=True).first()


def ticket_for_session(*, session: PaymentSession) -> Ticket | None:
    """The ticket a paid kiosk session made, if it made one yet."""
    return Ticket.objects.filter(payment_session=session).select_related("service").first()
