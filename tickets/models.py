"""Kiosk queue tickets: services, tickets numbered per service per local day, printers and
print jobs."""

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext_lazy as _


class Service(models.Model):
    name = models.CharField(_("name"), max_length=100)
    prefix = models.CharField(_("letter prefix"), max_length=2, unique=True)
    price = models.DecimalField(_("price"), max_digits=10, decimal_places=2)
    currency = models.CharField(_("currency"), max_length=3, default="BRL")
    active = models.BooleanField(_("active"), default=True)
    display_order = models.PositiveIntegerField(_("display order"), default=0)

    class Meta:
        verbose_name = _("service")
        verbose_name_plural = _("services")
        ordering = ["display_order", "name"]
        constraints = [
            models.CheckConstraint(condition=Q(price__gt=0), name="service_price_positive"),
            models.CheckConstraint(
                condition=Q(prefix__regex=r"^[A-Z]{1,2}$"), name="service_prefix_letters"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.prefix} — {self.name}"


class TicketCounter(models.Model):
    """The last number given for a service on a local day; locked to number a ticket."""

    service = models.ForeignKey(
        Service, verbose_name=_("service"), on_delete=models.CASCADE, related_name="+"
    )
    day = models.DateField(_("day"))
    last_number = models.PositiveIntegerField(_("last number given"), default=0)

    class Meta:
        verbose_name = _("ticket counter")
        verbose_name_plural = _("ticket counters")
        constraints = [
            models.UniqueConstraint(fields=["service", "day"], name="counter_one_per_day")
        ]

    def __str__(self) -> str:
        return f"{self.service_id} {self.day}: {self.last_number}"


class TicketStatus(models.TextChoices):
    PAID = "paid", _("paid")
    PRINTING = "printing", _("printing")
    IN_QUEUE = "in_queue", _("in queue")
    CALLED = "called", _("called")
    IN_PROGRESS = "in_progress", _("in progress")
    COMPLETED = "completed", _("completed")
    PRINT_ERROR = "print_error", _("print error")
    NO_SHOW = "no_show", _("no show")
    CANCELLED = "cancelled", _("cancelled")


S = TicketStatus
# The allowed transitions, written once. A ticket with a print error can still be
# called (the customer shows the number at the desk) or reprinted.
TICKET_TRANSITIONS: dict[str, set[str]] = {
    S.PAID: {S.PRINTING, S.PRINT_ERROR, S.CANCELLED},
    S.PRINTING: {S.IN_QUEUE, S.PRINT_ERROR, S.PRINTING, S.CANCELLED},
    # PRINT_ERROR → IN_QUEUE: an attempt given up on came out of the printer after all.
    S.PRINT_ERROR: {S.PRINTING, S.IN_QUEUE, S.CALLED, S.CANCELLED},
    S.IN_QUEUE: {S.CALLED, S.PRINTING, S.CANCELLED},
    # CALLED → COMPLETED: the desk called the next customer without pressing Start, so the
    # one it was calling was served (tickets/services/desks.py: calling the next finishes the last).
    S.CALLED: {S.CALLED, S.IN_PROGRESS, S.COMPLETED, S.NO_SHOW, S.CANCELLED},
    S.IN_PROGRESS: {S.COMPLETED},
    S.COMPLETED: set(),
    S.NO_SHOW: set(),
    S.CANCELLED: set(),
}
WAITING_STATUSES = (S.PAID, S.PRINTING, S.IN_QUEUE, S.PRINT_ERROR)
# At a desk: a desk has at most one such ticket (the constraint `ticket_one_per_desk`).
AT_DESK_STATUSES = (S.CALLED, S.IN_PROGRESS)
FINISHED_STATUSES = (S.COMPLETED, S.NO_SHOW, S.CANCELLED)


class Ticket(models.Model):
    service = models.ForeignKey(
        Service, verbose_name=_("service"), on_delete=models.PROTECT, related_name="tickets"
    )
    day = models.DateField(_("day"))
    number = models.PositiveIntegerField(_("number"))
    status = models.CharField(
        _("status"), max_length=12, choices=TicketStatus.choices, default=TicketStatus.PAID
    )
    customer_name = models.CharField(_("customer name"), max_length=60, blank=True, default="")
    # Only the last digits of a CPF are ever kept.
    cpf_masked = models.CharField(_("CPF (masked)"), max_length=14, blank=True, default="")
    payment_session = models.OneToOneField(
        "payments.PaymentSession",
        on_delete=models.PROTECT,
        related_name="ticket",
        verbose_name=_("payment session"),
    )
    desk = models.CharField(_("desk"), max_length=20, blank=True, default="")
    operator = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("operator"),
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="+",
    )
    paid_at = models.DateTimeField(_("paid at"))
    created_at = models.DateTimeField(_("created at"), default=timezone.now)
    printed_at = models.DateTimeField(_("printed at"), null=True, blank=True)
    called_at = models.DateTimeField(_("called at"), null=True, blank=True)
    started_at = models.DateTimeField(_("started at"), null=True, blank=True)
    finished_at = models.DateTimeField(_("finished at"), null=True, blank=True)

    class Meta:
        verbose_name = _("ticket")
        verbose_name_plural = _("tickets")
        constraints = [
            models.UniqueConstraint(
                fields=["service", "day", "number"], name="ticket_number_unique_per_day"
            ),
            # The display board shows one number per desk: never two called at once.
            models.UniqueConstraint(
                fields=["desk"],
                condition=Q(status__in=["called", "in_progress"]) & ~Q(desk=""),
                name="ticket_one_per_desk",
            ),
        ]
        indexes = [
            models.Index(fields=["status", "paid_at"], name="ticket_queue"),
            models.Index(fields=["called_at"], name="ticket_called"),
        ]

    def __str__(self) -> str:
        return self.code

    @property
    def code(self) -> str:
        return f"{self.service.prefix}-{self.number:03d}"


class Printer(models.Model):
    name = models.CharField(_("name"), max_length=100, unique=True)
    location = models.CharField(_("location"), max_length=200, blank=True, default="")
    url = models.CharField(
        _("URL"), max_length=300, help_text=_("tcp://host:9100, file:///dev/usb/lp0 or dummy:")
    )
    profile = models.CharField(_("python-escpos profile"), max_length=60, default="default")
    enabled = models.BooleanField(_("enabled"), default=True)
    last_success_at = models.DateTimeField(_("last success"), null=True, blank=True)
    last_error = models.TextField(_("last error"), blank=True, default="")
    last_error_at = models.DateTimeField(_("last error at"), null=True, blank=True)

    class Meta:
        verbose_name = _("printer")
        verbose_name_plural = _("printers")

    def __str__(self) -> str:
        return self.name


class PrintJobStatus(models.TextChoices):
    QUEUED = "queued", _("queued")
    SENDING = "sending", _("sending")
    PRINTED = "printed", _("printed")
    FAILED = "failed", _("failed")


class PrintJob(models.Model):
    ticket = models.ForeignKey(
        Ticket, verbose_name=_("ticket"), on_delete=models.PROTECT, related_name="print_jobs"
    )
    printer = models.ForeignKey(
        Printer,
        verbose_name=_("printer"),
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="jobs",
    )
    data = models.BinaryField(_("ESC/POS bytes"))
    status = models.CharField(
        _("status"), max_length=10, choices=PrintJobStatus.choices, default=PrintJobStatus.QUEUED
    )
    attempts = models.PositiveIntegerField(_("attempts"), default=0)
    last_error = models.TextField(_("last error"), blank=True, default="")
    # Set when an attempt ended after its bytes may have reached the printer (the worker
    # died while sending, or the printer never confirmed): `data` then starts with the
    # REPRINT banner, so a second slip is never mistaken for a second ticket.
    reprint_marked = models.BooleanField(
        _("marked REPRINT"),
        default=False,
        help_text=_(
            "An earlier attempt may have printed this ticket; later attempts print a "
            "REPRINT banner above it."
        ),
    )
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("requested by"),
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="+",
    )
    created_at = models.DateTimeField(_("created at"), default=timezone.now)
    sent_at = models.DateTimeField(_("sent at"), null=True, blank=True)

    class Meta:
        verbose_name = _("print job")
        verbose_name_plural = _("print jobs")
        indexes = [models.Index(fields=["status", "created_at"], name="printjob_status")]

    def __str__(self) -> str:
        return f"#{self.pk} {self.ticket} ({self.status})"


class TicketEvent(models.Model):
    """Append-only audit of a ticket's steps."""

    ticket = models.ForeignKey(
        Ticket, verbose_name=_("ticket"), on_delete=models.PROTECT, related_name="events"
    )
    type = models.CharField(_("type"), max_length=30)
    from_status = models.CharField(_("status before"), max_length=12, blank=True, default="")
    to_status = models.CharField(_("status after"), max_length=12, blank=True, default="")
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("actor"),
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="+",
    )
    data = models.JSONField(_("details"), default=dict, blank=True)
    created_at = models.DateTimeField(_("time"), default=timezone.now)

    class Meta:
        ordering = ["id"]
        verbose_name = _("ticket event")
        verbose_name_plural = _("ticket events")

    def __str__(self) -> str:
        return f"{self.ticket_id} {self.type}"


class Kiosk(models.Model):
    """A self-service kiosk; opened with its device token (only the hash is kept)."""

    name = models.CharField(_("name"), max_length=100, unique=True)
    location = models.CharField(_("location"), max_length=200, blank=True, default="")
    token_hash = models.CharField(
        _("kiosk token hash"), max_length=64, unique=True, null=True, blank=True
    )
    printer = models.ForeignKey(
        Printer,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="kiosks",
        verbose_name=_("printer"),
    )
    active = models.BooleanField(_("active"), default=True)

    class Meta:
        verbose_name = _("kiosk")
        verbose_name_plural = _("kiosks")

    def __str__(self) -> str:
        return self.name


class DeskAssignment(models.Model):
    """Append-only: each time an operator chose a desk. The latest row is the desk the
    operator works at now, kept across logins and devices."""

    operator = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        related_name="+",
        verbose_name=_("operator"),
    )
    desk = models.CharField(_("desk"), max_length=20)
    previous_desk = models.CharField(_("previous desk"), max_length=20, blank=True, default="")
    created_at = models.DateTimeField(_("time"), default=timezone.now)

    class Meta:
        verbose_name = _("desk assignment")
        verbose_name_plural = _("desk assignments")
        indexes = [models.Index(fields=["operator", "-id"], name="desk_assignment_latest")]
        constraints = [
            models.CheckConstraint(condition=~Q(desk=""), name="desk_assignment_not_empty")
        ]

    def __str__(self) -> str:
        return f"{self.operator_id} → {self.desk}"
