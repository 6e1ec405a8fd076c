from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _


class WorkerHeartbeat(models.Model):
    """The last sign of life of each background worker process; read by /healthz."""

    worker_id = models.CharField(_("worker id"), max_length=64, unique=True)
    hostname = models.CharField(_("host name"), max_length=255)
    pid = models.PositiveIntegerField(_("process id"))
    started_at = models.DateTimeField(_("started at"), default=timezone.now)
    last_seen = models.DateTimeField(_("last seen"), default=timezone.now, db_index=True)
    tasks_run = models.PositiveBigIntegerField(_("tasks run"), default=0)

    class Meta:
        verbose_name = _("worker heartbeat")
        verbose_name_plural = _("worker heartbeats")
        ordering = ["-last_seen"]

    def __str__(self) -> str:
        return f"{self.hostname}:{self.pid} ({self.worker_id})"
