from django.core.management.base import BaseCommand, CommandError

from payments.errors import PaymentError
from payments.models import DeliveryStatus, WebhookDelivery
from payments.services.deliveries import delivery_replay


class Command(BaseCommand):
    help = (
        "Process stored webhook deliveries again, each as a new attempt linked to it (the "
        "original keeps its outcome): --id N (repeatable) or --failed."
    )

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
            try:
                result = delivery_replay(delivery_id=pk)
            except PaymentError as exc:
                self.stdout.write(f"delivery {pk}: not replayed: {exc}")
                ok = False
                continue
            self.stdout.write(
                f"delivery {pk}: replayed as delivery {result.delivery_id}: {result.status}"
                + (f" ({result.error})" if result.error else "")
            )
            ok = ok and result.status not in ("failed", "dead", "rejected")
        if not ok:
            raise CommandError("Some deliveries still fail.", returncode=1)
