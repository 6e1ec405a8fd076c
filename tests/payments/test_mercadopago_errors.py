"""What Mercado Pago's failures mean to Confirma, against the local fake API: a provider that
is down, unreachable or answering something unreadable is ProviderUnavailable (retried,
never a crash), classified by the SDK's own exception classes."""

import uuid
from decimal import Decimal

import pytest
import requests
from mercadopago.errors import MPConnectionError, MPServerError

from payments.errors import PaymentError, ProviderUnavailable
from payments.fakes.mercadopago import FakeMercadoPago
from payments.models import DeliveryStatus, PaymentStatus, WebhookDelivery
from payments.providers.mercadopago import adapter
from payments.services import payment_session_create
from tests.e2e.stack import free_port
from tests.factories import UserFactory
from tests.payments.conftest import mercadopago_fake_running, post_mp

GATEWAY_PAGE = b"<html><body><h1>502 Bad Gateway</h1><p>nginx</p></body></html>"


class FakeBehindAProxy(FakeMercadoPago):
    """The fake Mercado Pago behind a proxy that may answer for it with a page of its own
    (status, body, content type), as a load balancer does when the API is down."""

    proxy_answer: tuple[int, bytes, str] | None = None

    def _handler(self):
        fake = self

        class Handler(super()._handler()):
            def _authorised(self) -> bool:
                if fake.proxy_answer is None:
                    return super()._authorised()
                status, body, content_type = fake.proxy_answer
                self.send_response(status)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)
                return False

        return Handler


@pytest.fixture
def mp(settings):
    yield from mercadopago_fake_running(settings, FakeBehindAProxy)


def a_payment(fake) -> str:
    status, payment = fake.create(
        {"transaction_amount": 12.5, "payment_method_id": "pix", "payer": {"email": "a@b.c"}},
        uuid.uuid4().hex,
    )
    assert status == 201
    return str(payment["id"])


def test_a_proxy_error_page_is_provider_unavailable_naming_the_status(mp):
    """The SDK raises MPServerError for a body that is not JSON; Confirma catches that class
    (not a class-name string) and reports the status the proxy gave."""
    payment_id = a_payment(mp)
    mp.proxy_answer = (502, GATEWAY_PAGE, "text/html")
    with pytest.raises(ProviderUnavailable, match=r"answered 502") as caught:
        adapter.fetch(payment_id)
    assert isinstance(caught.value.__cause__, MPServerError)
    assert caught.value.__cause__.status_code == 502


def test_an_unreadable_success_is_not_taken_for_a_payment(mp):
    """A 200 whose body is not JSON (a captive portal, a truncated answer) is retried, not
    read as a payment or a refusal."""
    payment_id = a_payment(mp)
    mp.proxy_answer = (200, b"<html>sign in to the network</html>", "text/html")
    with pytest.raises(ProviderUnavailable, match=r"answered 200") as caught:
        adapter.fetch(payment_id)
    assert isinstance(caught.value.__cause__, MPServerError)


def test_a_json_5xx_is_provider_unavailable(mp):
    payment_id = a_payment(mp)
    mp.outage = True  # the fake's own 503 with a JSON body: the SDK returns the status
    with pytest.raises(ProviderUnavailable, match=r"answered 503"):
        adapter.fetch(payment_id)


def test_an_unreachable_api_is_provider_unavailable(mp, settings):
    settings.MERCADOPAGO_API_BASE = f"http://127.0.0.1:{free_port()}"  # nothing listens
    with pytest.raises(ProviderUnavailable, match=r"unreachable") as caught:
        adapter.fetch("1300000001")
    assert isinstance(caught.value.__cause__, requests.ConnectionError)


def test_the_sdks_typed_connection_error_is_provider_unavailable(mp, monkeypatch):
    """The SDK exports MPConnectionError (status 0) for transport failures; its class name
    holds no "MPServerError", so only catching the class keeps it a retry, not a crash."""

    def refuse(self, method, url, *args, **kwargs):
        raise MPConnectionError(ConnectionRefusedError("connection refused"))

    monkeypatch.setattr("mercadopago.http.http_client.HttpClient.request", refuse)
    with pytest.raises(ProviderUnavailable, match=r"unreachable: MPConnectionError"):
        adapter.fetch("1300000001")


def test_a_json_refusal_stays_a_refusal(mp):
    mp.proxy_answer = (400, b'{"message": "invalid payer", "status": 400}', "application/json")
    with pytest.raises(PaymentError, match=r"refused the request \(400\): invalid payer") as caught:
        adapter.fetch("1300000001")
    assert not isinstance(caught.value, ProviderUnavailable)


@pytest.mark.django_db
def test_a_notification_met_by_a_proxy_error_is_kept_for_a_retry(client, mp):
    """Through the real webhook URL: Mercado Pago is told to try again (503) and Confirma
    keeps the delivery for its own retry; nothing is confirmed."""
    session = payment_session_create(
        user=UserFactory(),
        purpose="wallet_topup",
        provider="mercadopago",
        amount=Decimal("25.00"),
        idempotency_key=uuid.uuid4().hex,
    ).session
    mp.set_status(session.provider_payment_id, "approve")
    mp.proxy_answer = (502, GATEWAY_PAGE, "text/html")
    response = post_mp(client, mp.notification(session.provider_payment_id))
    assert response.status_code == 503
    delivery = WebhookDelivery.objects.get()
    assert delivery.status == DeliveryStatus.FAILED
    assert "ProviderUnavailable: Mercado Pago answered 502" in delivery.error
    assert delivery.next_attempt_at is not None
    session.refresh_from_db()
    assert session.status == PaymentStatus.PENDING
