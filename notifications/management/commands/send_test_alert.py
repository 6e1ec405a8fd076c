"""`manage.py send_test_alert`: try every alert URL now. Exit status 0 when every URL got the
message, 1 when one did not, 2 when none is configured."""

from core.commands import ConfirmaCommand, problems_found, usage_error
from notifications.alert_delivery import alert_targets_try


class Command(ConfirmaCommand):
    help = (
        "Send a test message to every alert URL (ALERT_URLS) now and say, per URL, whether "
        "it arrived; exits 1 when one did not. Records no alert."
    )

    def handle(self, *args, **options):
        results = alert_targets_try()
        if not results:
            raise usage_error("No alert URL is configured (ALERT_URLS).")
        for label, problem in results:
            self.stdout.write(f"{label}: {'sent' if not problem else f'failed ({problem})'}")
        failed = sum(1 for _, problem in results if problem)
        if failed:
            raise problems_found(f"{failed} of {len(results)} alert URLs did not get the message.")
