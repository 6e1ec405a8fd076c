from django.conf import settings

from core.commands import ConfirmaCommand, usage_error
from fakeproviders.billing import FakeBilling

REQUIRED = (
    "CLICK_SERVICE_ID",
    "CLICK_MERCHANT_ID",
    "CLICK_SECRET_KEY",
    "NOWPAYMENTS_API_KEY",
    "NOWPAYMENTS_IPN_SECRET",
    "COINBASE_COMMERCE_API_KEY",
    "COINBASE_COMMERCE_WEBHOOK_SECRET",
)


class Command(ConfirmaCommand):
    help = (
        "Run the local fake Click, NOWPayments and Coinbase Commerce (demo and development only)."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)"
        )
        parser.add_argument(
            "--port", type=int, default=8011, help="port to listen on (default 8011)"
        )

    def handle(self, *args, host, port, **options):
        if not settings.FAKE_PROVIDERS:
            raise usage_error(
                "The fake providers run only with DEBUG=true and FAKE_PROVIDERS=true."
            )
        missing = [name for name in REQUIRED if not getattr(settings, name, "")]
        if missing:
            raise usage_error(f"Set {', '.join(missing)}.")  # names only, never values
        base = settings.PUBLIC_BASE_URL.rstrip("/")
        try:
            fake = FakeBilling(
                click_service_id=settings.CLICK_SERVICE_ID,
                click_merchant_id=settings.CLICK_MERCHANT_ID,
                click_secret_key=settings.CLICK_SECRET_KEY,
                nowpayments_api_key=settings.NOWPAYMENTS_API_KEY,
                nowpayments_ipn_secret=settings.NOWPAYMENTS_IPN_SECRET,
                coinbase_api_key=settings.COINBASE_COMMERCE_API_KEY,
                coinbase_webhook_secret=settings.COINBASE_COMMERCE_WEBHOOK_SECRET,
                click_prepare_url=f"{base}/webhooks/click/prepare/",
                click_complete_url=f"{base}/webhooks/click/complete/",
                coinbase_webhook_url=f"{base}/webhooks/coinbase/",
                host=host,
                port=port,
            )
        except OSError as exc:
            raise usage_error(f"Cannot listen on {host}:{port}: {exc.strerror or exc}") from exc
        self.stdout.write(f"Fake Click/NOWPayments/Coinbase on {fake.url}")
        fake.serve_until_stopped()
