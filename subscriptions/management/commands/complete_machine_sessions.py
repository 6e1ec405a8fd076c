from django.core.management.base import BaseCommand

from subscriptions.services.machines import (
    usage_sessions_complete_due,
    usage_sessions_expire_unpaid,
)


class Command(BaseCommand):
    help = "Complete machine sessions whose time is up; expire unpaid ones."

    def handle(self, *args, **options):
        completed = usage_sessions_complete_due()
        expired = usage_sessions_expire_unpaid()
        if completed or expired or options["verbosity"] > 1:
            self.stdout.write(f"completed {completed}, expired {expired} machine sessions")
