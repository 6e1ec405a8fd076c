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


class PeriodicJob(models.Model):
    """One periodic job (settings.PERIODIC_JOBS) as every node's scheduler sees it: each
    run is claimed by moving `next_due_at` on with a conditional UPDATE, so whatever the
    number of nodes, the job runs once per period on one of them, and on any that lives."""

    name = models.CharField(_("job"), max_length=100, unique=True)
    every_seconds = models.PositiveIntegerField(_("every (seconds)"))
    next_due_at = models.DateTimeField(_("next due at"))
    last_started_at = models.DateTimeField(_("last started at"), null=True, blank=True)
    last_finished_at = models.DateTimeField(_("last finished at"), null=True, blank=True)
    last_node = models.CharField(_("last run on"), max_length=120, blank=True, default="")
    last_status = models.CharField(_("last result"), max_length=20, blank=True, default="")
    runs = models.PositiveBigIntegerField(_("runs"), default=0)

    class Meta:
        verbose_name = _("periodic job")
        verbose_name_plural = _("periodic jobs")
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name
