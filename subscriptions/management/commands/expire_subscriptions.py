from django.core.management.base import BaseCommand

from subscriptions.services.plans import subscriptions_expire_due


class Command(BaseCommand):
    help = "Expire subscriptions whose period has ended (event and notification each)."

    def handle(self, *args, **options):
        count = subscriptions_expire_due()
        self.stdout.write(f"{count} subscription(s) expired")
