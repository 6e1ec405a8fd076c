"""What Mercado Pago's failures mean to Confirma, against the local fake API: a provider that
is down, unreachable or answering something unreadable is ProviderUnavailable (retried,
never a crash), classified by the SDK's own exception classes."""

import uuid
from datetime import timedelta
from decimal import Decimal

import pytest
import requests
from django.utils import timezone
from mercadopago.errors import MPConnectionError, MPServerError

from fakeproviders.mercadopago import FakeMercadoPago
from payments.errors import PaymentError, ProviderUnavailable
from payments.models import DeliveryStatus, LedgerEntry, PaymentStatus, WebhookDelivery
from payments.providers.mercadopago import adapter
from payments.services import payment_session_create, wallet_account_get
from payments.services.deliveries import deliveries_run
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


def approved_topup(fake, user=None):
    session = payment_session_create(
        user=user or UserFactory(),
        purpose="wallet_topup",
        provider="mercadopago",
        amount=Decimal("25.00"),
        idempotency_key=uuid.uuid4().hex,
    ).session
    fake.set_status(session.provider_payment_id, "approve")
    return session


@pytest.mark.django_db
def test_a_notification_met_by_a_proxy_error_is_kept_for_a_retry(client, mp):
    """Through the real webhook URL: the notification is stored and Mercado Pago told so
    (200); the worker that fetches the payment meets the proxy's error page and keeps the
    delivery failed, for a retry after a back-off; nothing is confirmed."""
    session = approved_topup(mp)
    mp.proxy_answer = (502, GATEWAY_PAGE, "text/html")
    response = post_mp(client, mp.notification(session.provider_payment_id))
    assert response.status_code == 200 and response.intake["status"] == "accepted"
    assert response.json()["status"] == DeliveryStatus.FAILED
    delivery = WebhookDelivery.objects.get()
    assert delivery.status == DeliveryStatus.FAILED and delivery.response_status == 503
    assert "ProviderUnavailable: Mercado Pago answered 502" in delivery.error
    assert delivery.next_attempt_at > timezone.now()
    session.refresh_from_db()
    assert session.status == PaymentStatus.PENDING


@pytest.mark.django_db
@pytest.mark.parametrize("failure", ["answers 500", "unreachable"])
def test_a_failed_fetch_backs_off_then_confirms_once_when_due(client, mp, settings, failure):
    """Mercado Pago answering 500, or not reachable at all, while a worker fetches the
    payment: the delivery is failed with a back-off. Once the API is back, nothing happens
    before the back-off ends; when it has, a worker confirms the payment, once."""
    user = UserFactory()
    session = approved_topup(mp, user)
    notification = mp.notification(session.provider_payment_id)
    api = settings.MERCADOPAGO_API_BASE
    if failure == "answers 500":
        mp.proxy_answer = (500, b'{"message": "internal error", "status": 500}', "application/json")
    else:
        settings.MERCADOPAGO_API_BASE = f"http://127.0.0.1:{free_port()}"  # nothing listens
    assert post_mp(client, notification).json()["status"] == DeliveryStatus.FAILED
    delivery = WebhookDelivery.objects.get()
    expected = "answered 500" if failure == "answers 500" else "unreachable"
    assert expected in delivery.error
    assert (delivery.status, delivery.attempts) == (DeliveryStatus.FAILED, 1)
    wait = (delivery.next_attempt_at - delivery.processed_at).total_seconds()
    assert wait == pytest.approx(settings.WEBHOOK_RETRY_BASE_SECONDS, abs=1)
    session.refresh_from_db()
    assert session.status == PaymentStatus.PENDING

    # The provider recovers; the back-off still holds the delivery.
    mp.proxy_answer = None
    settings.MERCADOPAGO_API_BASE = api
    assert deliveries_run().processed == 0
    delivery.refresh_from_db()
    assert (delivery.status, delivery.attempts) == (DeliveryStatus.FAILED, 1)

    # Its time has come: processed, the payment confirmed and credited once.
    WebhookDelivery.objects.filter(pk=delivery.pk).update(
        next_attempt_at=timezone.now() - timedelta(seconds=1)
    )
    assert deliveries_run().as_dict() == {
        "retried": 1,
        "succeeded": 1,
        "failed": 0,
        "dead": 0,
        "rejected": 0,
    }
    delivery.refresh_from_db()
    assert (delivery.status, delivery.attempts, delivery.next_attempt_at) == (
        DeliveryStatus.PROCESSED,
        2,
        None,
    )
    session.refresh_from_db()
    assert session.status == PaymentStatus.COMPLETED
    assert LedgerEntry.objects.filter(session=session).count() == 1
    assert session.audits.filter(action="completed").count() == 1
    assert wallet_account_get(user=user).balance == Decimal("25.00")
    assert deliveries_run().processed == 0
