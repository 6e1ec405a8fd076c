"""`manage.py replay_webhooks`: process stored deliveries again. Exit status 0 when every
replay succeeded, 1 when some still fail, 2 when it could not run (no or unknown
deliveries named, database unavailable)."""

from core.commands import ConfirmaCommand, problems_found, usage_error
from payments.errors import PaymentError
from payments.models import DeliveryStatus, WebhookDelivery
from payments.services.deliveries import delivery_replay


class Command(ConfirmaCommand):
    help = (
        "Process stored webhook deliveries again, each as a new attempt linked to it (the "
        "original keeps its outcome): --id N (repeatable) or --failed."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--id",
            type=int,
            action="append",
            dest="ids",
            default=[],
            help="id of a delivery to replay; repeat for several",
        )
        parser.add_argument("--failed", action="store_true", help="every failed delivery")
        parser.add_argument(
            "--limit", type=int, default=1000, help="most deliveries replayed (default 1000)"
        )

    def handle(self, *args, ids, failed, limit, **options):
        if not ids and not failed:
            raise usage_error("Say which deliveries: --id N or --failed.")
        if limit < 1:
            raise usage_error("--limit must be at least 1.")
        queryset = WebhookDelivery.objects.none()
        if ids:
            queryset = WebhookDelivery.objects.filter(pk__in=ids)
            missing = set(ids) - set(queryset.values_list("pk", flat=True))
            if missing:
                raise usage_error(f"No such deliveries: {sorted(missing)}")
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
            raise problems_found("Some deliveries still fail.")
