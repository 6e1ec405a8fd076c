"""`manage.py expire_subscriptions`: end subscriptions whose period is over. Run every
minute. Exit status 0, or 2 when it could not run (database unavailable)."""

from core.commands import ConfirmaCommand
from subscriptions.services.plans import subscriptions_expire_due


class Command(ConfirmaCommand):
    help = "Expire subscriptions whose period has ended (event and notification each)."

    def handle(self, *args, **options):
        count = subscriptions_expire_due()
        self.summary(f"{count} subscription(s) expired", happened=bool(count), expired=count)
