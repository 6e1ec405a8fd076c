"""The `ticket` purpose: a paid kiosk session becomes a PAID ticket, numbered from the
service's counter for the local day, inside the confirmation's transaction."""

import logging

from django.conf import settings
from django.db import connection
from django.db.models import Exists, OuterRef
from django.utils import timezone
from django.utils.translation import gettext as _

from payments.errors import InvalidParams
from payments.models import PaymentSession, Provider
from payments.registry import Purpose, Quote
from tickets.cpf import cpf_mask, cpf_valid
from tickets.models import (
    Kiosk,
    Service,
    Ticket,
    TicketCounter,
    TicketEvent,
)
from tickets.services.print_jobs import print_jobs_create
from tickets.services.transitions import _tell

logger = logging.getLogger(__name__)


def _numbers_take(service_id: int, day, count: int) -> range:
    """The next `count` ticket numbers of a service on `day`, in one statement.

    The counter row stays locked until the caller's transaction ends, so numbers are
    gapless and never given twice: a concurrent payment waits here for this one to commit
    (or roll back, giving the numbers back).
    """
    table = connection.ops.quote_name(TicketCounter._meta.db_table)
    with connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {table} (service_id, day, last_number) VALUES (%s, %s, %s) "  # noqa: S608
            f"ON CONFLICT (service_id, day) DO UPDATE "
            f"SET last_number = {table}.last_number + EXCLUDED.last_number "
            "RETURNING last_number",
            [service_id, connection.ops.adapt_datefield_value(day), count],
        )
        last = cursor.fetchone()[0]
    return range(last - count + 1, last + 1)


class TicketPurpose(Purpose):
    name = "ticket"
    allow_anonymous = True
    public = False  # started by a kiosk page holding its token, or the self-test
    providers = (Provider.MERCADOPAGO, Provider.KIOSK)

    def quote(self, *, params, user, amount, currency) -> Quote:
        allowed = {"service", "customer_name", "cpf", "kiosk", "language"}
        if set(params) - allowed:
            raise InvalidParams(_("Unknown ticket parameters."))
        service = (
            Service.objects.filter(pk=params.get("service"), active=True).first()
            if (isinstance(params.get("service"), int))
            else None
        )
        if service is None:
            raise InvalidParams(_("Choose one of the services."), code="unknown_service")
        name = str(params.get("customer_name") or "").strip()[:60]
        cpf = str(params.get("cpf") or "").strip()
        if cpf and not cpf_valid(cpf):
            raise InvalidParams(_("This CPF is not valid."), code="invalid_cpf")
        clean = {"service": service.pk, "customer_name": name, "cpf": cpf_mask(cpf)}
        if params.get("kiosk") is not None:
            kiosk = params["kiosk"]
            if (
                not isinstance(kiosk, int)
                or not Kiosk.objects.filter(pk=kiosk, active=True).exists()
            ):
                raise InvalidParams(_("Unknown kiosk."), code="unknown_kiosk")
            clean["kiosk"] = kiosk
        if params.get("language") is not None:
            # The language the customer used at the kiosk: what the paper is printed in.
            if params["language"] not in dict(settings.LANGUAGES):
                raise InvalidParams(_("Unknown language."), code="unknown_language")
            clean["language"] = params["language"]
        return Quote(
            service.price,
            service.currency,
            clean,
            _("Ticket: %(service)s") % {"service": service.name},
        )

    def batch_order(self, *, session) -> tuple:
        # The service's ticket counter is locked until the batch commits.
        service = session.params.get("service")
        return (service if isinstance(service, int) else 0,)

    def fulfil(self, *, session: PaymentSession) -> None:
        self.fulfil_many(sessions=[session])

    def fulfil_many(self, *, sessions: list[PaymentSession]) -> None:
        """A ticket (with its first event and print job) for each session that has none;
        numbered per service and day in the order given (the batch's lock order)."""
        done = set(
            Ticket.objects.filter(payment_session__in=sessions).values_list(
                "payment_session_id", flat=True
            )
        )
        sessions = [session for session in sessions if session.pk not in done]
        if not sessions:
            return
        services = Service.objects.in_bulk({session.params["service"] for session in sessions})
        now = timezone.now()
        tickets = []
        for session in sessions:
            service = services.get(session.params["service"])
            if service is None:
                raise Service.DoesNotExist(f"No service {session.params['service']}.")
            paid_at = session.completed_at or now
            tickets.append(
                Ticket(
                    service=service,
                    day=timezone.localdate(paid_at),
                    paid_at=paid_at,
                    customer_name=session.params.get("customer_name", ""),
                    cpf_masked=session.params.get("cpf", ""),
                    payment_session=session,
                )
            )
        days: dict[tuple, list[Ticket]] = {}
        for ticket in tickets:
            days.setdefault((ticket.service_id, ticket.day), []).append(ticket)
        for (service_id, day), group in sorted(days.items()):  # counters in one order
            numbers = _numbers_take(service_id, day, len(group))
            for ticket, number in zip(group, numbers, strict=True):
                ticket.number = number
        Ticket.objects.bulk_create(tickets)
        TicketEvent.objects.bulk_create(
            [TicketEvent(ticket=t, type="created", to_status=t.status) for t in tickets]
        )
        for ticket in tickets:
            _tell(ticket, "ticket.created")
        kiosks = [session.params.get("kiosk") for session in sessions]
        print_jobs_create(list(zip(tickets, kiosks, strict=True)))

    def fulfilled_q(self):
        return Exists(Ticket.objects.filter(payment_session=OuterRef("pk")))
