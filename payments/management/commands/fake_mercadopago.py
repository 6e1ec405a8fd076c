from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from payments.fakes.mercadopago import FakeMercadoPago


class Command(BaseCommand):
    help = "Run the local fake Mercado Pago API (demo and development only)."

    def add_arguments(self, parser):
        parser.add_argument("--host", default="127.0.0.1")
        parser.add_argument("--port", type=int, default=8010)

    def handle(self, *args, host, port, **options):
        if not settings.FAKE_PROVIDERS:
            raise CommandError(
                "The fake providers run only with DEBUG=true and FAKE_PROVIDERS=true."
            )
        if not settings.MERCADOPAGO_ACCESS_TOKEN or not settings.MERCADOPAGO_WEBHOOK_SECRET:
            raise CommandError("Set MERCADOPAGO_ACCESS_TOKEN and MERCADOPAGO_WEBHOOK_SECRET.")
        fake = FakeMercadoPago(
            access_token=settings.MERCADOPAGO_ACCESS_TOKEN,
            webhook_secret=settings.MERCADOPAGO_WEBHOOK_SECRET,
            host=host,
            port=port,
        )
        self.stdout.write(f"fake Mercado Pago API on {fake.url}")
        fake.serve_until_stopped()
