from django.contrib import admin
from django.utils.translation import gettext_lazy as _

from config.models import PeriodicJob, WorkerHeartbeat
from core.admin_tools import ReadOnlyModelAdmin

# Confirma's name, not Django's, on every admin page (the logo is in admin/base_site.html).
admin.site.site_header = "Confirma"
admin.site.site_title = "Confirma"
admin.site.index_title = _("Administration")


@admin.register(WorkerHeartbeat)
class WorkerHeartbeatAdmin(ReadOnlyModelAdmin):
    list_display = ("worker_id", "hostname", "pid", "started_at", "last_seen", "tasks_run")
    readonly_fields = list_display

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False


@admin.register(PeriodicJob)
class PeriodicJobAdmin(ReadOnlyModelAdmin):
    """The periodic jobs as the schedulers of every node claim them: when each last ran,
    where, how it ended, and when it is due."""

    list_display = (
        "name",
        "every_seconds",
        "last_started_at",
        "last_finished_at",
        "last_status",
        "last_node",
        "next_due_at",
        "runs",
    )
    readonly_fields = list_display

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False
