from django.conf import settings

from core.commands import ConfirmaCommand, usage_error
from fakeproviders.mercadopago import FakeMercadoPago


class Command(ConfirmaCommand):
    help = "Run the local fake Mercado Pago API (demo and development only)."

    def add_arguments(self, parser):
        parser.add_argument(
            "--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)"
        )
        parser.add_argument(
            "--port", type=int, default=8010, help="port to listen on (default 8010)"
        )

    def handle(self, *args, host, port, **options):
        if not settings.FAKE_PROVIDERS:
            raise usage_error(
                "The fake providers run only with DEBUG=true and FAKE_PROVIDERS=true."
            )
        if not settings.MERCADOPAGO_ACCESS_TOKEN or not settings.MERCADOPAGO_WEBHOOK_SECRET:
            raise usage_error("Set MERCADOPAGO_ACCESS_TOKEN and MERCADOPAGO_WEBHOOK_SECRET.")
        try:
            fake = FakeMercadoPago(
                access_token=settings.MERCADOPAGO_ACCESS_TOKEN,
                webhook_secret=settings.MERCADOPAGO_WEBHOOK_SECRET,
                host=host,
                port=port,
            )
        except OSError as exc:
            raise usage_error(f"Cannot listen on {host}:{port}: {exc.strerror or exc}") from exc
        self.stdout.write(f"fake Mercado Pago API on {fake.url}")
        fake.serve_until_stopped()
