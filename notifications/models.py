from django.conf import settings
from django.core.serializers.json import DjangoJSONEncoder
from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _


class Event(models.Model):
    """One entry of the append-only event log; its id is the cursor clients resume from.

    An event is addressed to exactly one audience (`user:<id>`, `role:<name>`,
    `display:<name>`, `payment:<reference>`, `machine:<id>`); publishing to several
    audiences writes one row per audience.
    """

    id = models.BigAutoField(_("event number"), primary_key=True)
    audience = models.CharField(_("audience"), max_length=100)
    type = models.CharField(_("type"), max_length=100)
    payload = models.JSONField(_("payload"), default=dict, encoder=DjangoJSONEncoder)
    created_at = models.DateTimeField(_("created at"), default=timezone.now, db_index=True)

    class Meta:
        verbose_name = _("event")
        verbose_name_plural = _("events")
        indexes = [models.Index(fields=["audience", "id"], name="event_audience_cursor")]

    def __str__(self) -> str:
        return f"#{self.id} {self.type} → {self.audience}"

    def as_frame(self) -> dict:
        """The JSON frame clients receive."""
        return {
            "id": self.id,
            "type": self.type,
            "payload": self.payload,
            "at": self.created_at.isoformat(),
        }


class Alert(models.Model):
    """Something that needs a person, recorded once per problem rather than once per raise.

    While an alert is open (not resolved) every raise of the same code and de-duplication
    key counts on this row; staff are told again only once the de-duplication window has
    passed since they were last told. Resolving it closes it: the next raise opens a new
    one.
    """

    code = models.CharField(_("code"), max_length=100)
    dedupe_key = models.CharField(_("de-duplication key"), max_length=200)
    message = models.TextField(_("message"))
    context = models.JSONField(_("context"), default=dict, blank=True, encoder=DjangoJSONEncoder)
    first_raised_at = models.DateTimeField(_("first raised at"), default=timezone.now)
    last_raised_at = models.DateTimeField(_("last raised at"), default=timezone.now)
    last_notified_at = models.DateTimeField(_("staff last told at"), default=timezone.now)
    count = models.PositiveIntegerField(_("times raised"), default=1)
    resolved_at = models.DateTimeField(_("resolved at"), null=True, blank=True)
    resolved_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("resolved by"),
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
    )
    notes = models.TextField(_("notes"), blank=True, default="")

    class Meta:
        verbose_name = _("alert")
        verbose_name_plural = _("alerts")
        ordering = ["-last_raised_at"]
        constraints = [
            # Concurrent raises of one problem meet on this row instead of racing to insert.
            models.UniqueConstraint(
                fields=["code", "dedupe_key"],
                condition=models.Q(resolved_at__isnull=True),
                name="alert_one_open_per_key",
            )
        ]
        indexes = [
            models.Index(fields=["last_raised_at"], name="alert_last_raised"),
            models.Index(
                fields=["resolved_at"],
                condition=models.Q(resolved_at__isnull=False),
                name="alert_resolved",
            ),
        ]

    def __str__(self) -> str:
        state = "resolved" if self.resolved_at else "open"
        return f"{self.code} ×{self.count} ({state})"
