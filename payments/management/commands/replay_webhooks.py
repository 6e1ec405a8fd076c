from django.core.management.base import BaseCommand, CommandError

from payments.models import DeliveryStatus, WebhookDelivery
from payments.services.webhooks import delivery_replay


class Command(BaseCommand):
    help = "Process stored webhook deliveries again: --id N (repeatable) or --failed."

    def add_arguments(self, parser):
        parser.add_argument("--id", type=int, action="append", dest="ids", default=[])
        parser.add_argument("--failed", action="store_true", help="every failed delivery")
        parser.add_argument("--limit", type=int, default=1000)

    def handle(self, *args, ids, failed, limit, **options):
        if not ids and not failed:
            raise CommandError("Say which deliveries: --id N or --failed.")
        queryset = WebhookDelivery.objects.none()
        if ids:
            queryset = WebhookDelivery.objects.filter(pk__in=ids)
            missing = set(ids) - set(queryset.values_list("pk", flat=True))
            if missing:
                raise CommandError(f"No such deliveries: {sorted(missing)}")
        if failed:
            queryset = queryset | WebhookDelivery.objects.filter(status=DeliveryStatus.FAILED)
        ok = True
        for pk in queryset.order_by("id").values_list("pk", flat=True)[:limit]:
            outcome = delivery_replay(delivery_id=pk)
            self.stdout.write(f"delivery {pk}: {outcome.status} {outcome.body}")
            ok = ok and outcome.status < 500
        if not ok:
            raise CommandError("Some deliveries still fail.", returncode=1)
