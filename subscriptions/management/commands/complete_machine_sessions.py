"""`manage.py complete_machine_sessions`: end machine sessions whose time is up and
expire unpaid ones. Run every 5 seconds. Exit status 0, or 2 when it could not run
(database unavailable)."""

from core.commands import ConfirmaCommand
from subscriptions.services.machines import (
    usage_sessions_complete_due,
    usage_sessions_expire_unpaid,
)


class Command(ConfirmaCommand):
    help = "Complete machine sessions whose time is up; expire unpaid ones."

    def handle(self, *args, **options):
        completed = usage_sessions_complete_due()
        expired = usage_sessions_expire_unpaid()
        self.summary(
            f"completed {completed}, expired {expired} machine sessions",
            happened=bool(completed or expired),
            completed=completed,
            expired=expired,
        )
