from django.core.management.base import BaseCommand, CommandError

from notifications.alert_delivery import alert_targets_try


class Command(BaseCommand):
    help = (
        "Send a test message to every alert URL (ALERT_URLS) now and say, per URL, whether "
        "it arrived; exits 1 when one did not. Records no alert."
    )

    def handle(self, *args, **options):
        results = alert_targets_try()
        if not results:
            raise CommandError("No alert URL is configured (ALERT_URLS).")
        for label, problem in results:
            self.stdout.write(f"{label}: {'sent' if not problem else f'failed ({problem})'}")
        failed = sum(1 for _, problem in results if problem)
        if failed:
            raise CommandError(f"{failed} of {len(results)} alert URLs did not get the message.")
