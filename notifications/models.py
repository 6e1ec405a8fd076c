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

    id = models.BigAutoField(primary_key=True)
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
