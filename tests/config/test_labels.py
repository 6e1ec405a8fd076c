"""What people read is a translated label, never a field name or a code: every model field
has a verbose name written in code, and pages show labels instead of codes."""

from decimal import Decimal
from html.parser import HTMLParser

import pytest
from django.apps import apps
from django.utils import timezone
from django.utils.functional import Promise

from tests.factories import (
    EventFactory,
    LedgerEntryFactory,
    PaymentSessionFactory,
    PlanFactory,
    SubscriptionEventFactory,
    SubscriptionFactory,
    UserFactory,
    WalletAccountFactory,
    WebhookDeliveryFactory,
)

CONFIRMA_APPS = ("config", "notifications", "payments", "subscriptions", "tickets", "orders")


def _confirma_models():
    return [m for m in apps.get_models() if m._meta.app_label in CONFIRMA_APPS]


def _labelled_fields(model):
    """Concrete fields a person can see: all but the primary key Django adds by itself."""
    for field in model._meta.concrete_fields:
        if field.primary_key and field.auto_created:
            continue
        yield field


def test_every_confirma_field_has_a_translatable_verbose_name_written_in_code():
    # Django fills `verbose_name` from the field's name when none is given; `_verbose_name`
    # keeps what the code gave (None when nothing was).
    missing, untranslated = [], []
    for model in _confirma_models():
        for field in _labelled_fields(model):
            name = f"{model._meta.label}.{field.name}"
            if field._verbose_name is None:
                missing.append(name)
            elif not isinstance(field._verbose_name, Promise):
                untranslated.append(name)
    assert len(_confirma_models()) > 20
    assert missing == []
    assert untranslated == []


def test_every_confirma_model_names_itself_translatably():
    missing = []
    for model in _confirma_models():
        attrs = model._meta.original_attrs
        for key in ("verbose_name", "verbose_name_plural"):
            if not isinstance(attrs.get(key), Promise):
                missing.append(f"{model._meta.label}.{key}")
    assert missing == []


def test_the_check_finds_a_field_without_a_verbose_name():
    """The walk above really fails: a field declared without one is caught."""
    from django.db import models

    field = models.CharField(max_length=3)
    field.set_attributes_from_name("paid_currency")
    assert field._verbose_name is None
    assert field.verbose_name == "paid currency"  # Django's English default, untranslatable


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("url", "portuguese", "english"),
    [
        (
            "/admin/payments/couponredemption/",
            ["cupom", "sessão de pagamento", "criado em"],
            ["Coupon", "Session", "Created at"],
        ),
        (
            "/admin/payments/walletaccount/",
            ["cliente", "atualizado em"],
            ["User", "Updated at"],
        ),
    ],
)
def test_admin_column_headers_are_translated(client, url, portuguese, english):

    staff = UserFactory(roles=["staff"], is_staff=True, is_superuser=True)
    WalletAccountFactory(user=staff, balance=Decimal("1.00"))
    client.force_login(staff)
    response = client.get(url, HTTP_ACCEPT_LANGUAGE="pt-BR")
    assert response.status_code == 200
    headers = [str(header["text"]).lower() for header in response.context["result_headers"]]
    for label in portuguese:
        assert label in headers, (label, headers)
    for label in english:
        assert label.lower() not in headers, (label, headers)


# --- No raw codes on pages -------------------------------------------------------------


class _VisibleText(HTMLParser):
    """The text a person reads: element contents, no tags, attributes, scripts or styles."""

    def __init__(self):
        super().__init__()
        self.parts, self._hidden = [], 0

    def handle_starttag(self, tag, attrs):
        if tag in ("script", "style"):
            self._hidden += 1

    def handle_endtag(self, tag):
        if tag in ("script", "style"):
            self._hidden -= 1

    def handle_data(self, data):
        if not self._hidden:
            self.parts.append(data)


def visible_text(response) -> str:
    assert response.status_code == 200
    parser = _VisibleText()
    parser.feed(response.content.decode())
    return " ".join(" ".join(parser.parts).split())


def _session(user, *, purpose, status="pending", provider="mercadopago", amount="10.00"):
    return PaymentSessionFactory(
        purpose=purpose,
        provider=provider,
        user=user,
        amount=Decimal(amount),
        status=status,
        completed_at=timezone.now() if status == "completed" else None,
    )


@pytest.fixture
def operations_scenario():
    """Payments of two purposes (one paid and never delivered), and processed webhooks."""
    from payments.models import DeliveryStatus

    customer = UserFactory()
    _session(customer, purpose="wallet_topup", status="completed")
    _session(customer, purpose="machine_session")
    for _ in range(6):
        WebhookDeliveryFactory(status=DeliveryStatus.PROCESSED, signature_valid=True)


@pytest.mark.django_db
def test_operations_page_shows_labels_not_codes(client, operations_scenario):
    client.force_login(UserFactory(roles=["staff"]))
    english = client.get("/operations/", HTTP_ACCEPT_LANGUAGE="en")
    text = visible_text(english)
    for code in ("wallet_topup", "machine_session", "mercadopago", "unfulfilled"):
        assert code not in text, code
    for label in ("Wallet top-up", "Machine time", "Mercado Pago", "not delivered"):
        assert label in text, label
    # The codes stay where machines read them.
    page = english.content.decode()
    assert 'data-purpose="wallet_topup"' in page and 'data-provider="mercadopago"' in page
    assert 'data-kind="unfulfilled"' in page

    text = visible_text(client.get("/operations/", HTTP_ACCEPT_LANGUAGE="pt-BR"))
    assert "Recarga de crédito" in text
    assert "processado 6" in text
    assert "processed" not in text and "wallet_topup" not in text
    # The API keeps its codes.
    api = client.get("/api/integration/status/").json()
    assert {row["purpose"] for row in api["payments"]} == {"wallet_topup", "machine_session"}
    assert api["webhooks"][0]["last_day"] == {"processed": 6}


@pytest.mark.django_db
def test_live_activity_names_event_types_and_audiences(client):

    operator = UserFactory(roles=["operator"])
    EventFactory(audience=f"user:{operator.pk}", type="payment.confirmed", payload={})
    EventFactory(audience="role:operator", type="ticket.called", payload={})
    client.force_login(operator)
    for url in ("/activity/", "/activity/list/"):
        response = client.get(url, HTTP_ACCEPT_LANGUAGE="en")
        text = visible_text(response)
        for code in ("payment.confirmed", "ticket.called", f"user:{operator.pk}", "role:operator"):
            assert code not in text, (url, code)
        for label in (
            "Payment confirmed",
            "Ticket called",
            f"Customer #{operator.pk}",
            "Operators",
        ):
            assert label in text, (url, label)
        page = response.content.decode()
        assert 'data-event-type="payment.confirmed"' in page
        assert 'data-audience="role:operator"' in page
    text = visible_text(client.get("/activity/", HTTP_ACCEPT_LANGUAGE="pt-BR"))
    assert "Pagamento confirmado" in text and "payment.confirmed" not in text


def test_audience_and_event_type_labels_cover_every_kind():
    from config.event_catalogue import EVENTS
    from notifications.labels import EVENT_TYPE_LABELS, audience_label, event_type_label

    assert {entry.type for entry in EVENTS} <= set(EVENT_TYPE_LABELS)
    assert event_type_label("some.new_type") == "Event"
    assert audience_label("user:7") == "Customer #7"
    assert audience_label("role:operator") == "Operators"
    assert audience_label("display:hall") == "Display hall"
    assert audience_label("machine:3") == "Machine #3"


def test_every_registered_purpose_has_a_label():
    from payments.registry import purpose_label, purposes_all

    purposes = purposes_all()
    confirma = ("wallet_topup", "machine_session", "subscription", "ticket", "order")
    assert set(confirma) <= set(purposes)  # other tests may register purposes of their own
    for name in confirma:
        assert isinstance(purposes[name].label, Promise), name
        assert purpose_label(name) not in ("", name), name
    assert purpose_label("gone_purpose") == "gone_purpose"


@pytest.mark.django_db
def test_payments_page_shows_purpose_and_entry_labels(client):
    from payments.models import LedgerKind

    customer = UserFactory()
    topup = _session(customer, purpose="wallet_topup", status="completed", amount="20.00")
    machine = _session(customer, purpose="machine_session", status="completed", amount="8.00")
    account = WalletAccountFactory(user=customer, balance=Decimal("12"))
    LedgerEntryFactory(
        account=account,
        kind=LedgerKind.TOPUP,
        amount=Decimal("20.00"),
        balance_after=Decimal("20.00"),
        session=topup,
        reason="top-up",
    )
    LedgerEntryFactory(
        account=account,
        kind=LedgerKind.SPEND,
        amount=Decimal("-8.00"),
        balance_after=Decimal("12.00"),
        session=machine,
        reason="machine session 3",
    )
    client.force_login(customer)
    text = visible_text(client.get("/payments/", HTTP_ACCEPT_LANGUAGE="en"))
    assert "wallet_topup" not in text and "machine_session" not in text
    assert "Top-up ·" not in text and "· top-up" not in text
    assert "Spend · Machine time" in text and "Wallet top-up" in text
    text = visible_text(client.get("/payments/", HTTP_ACCEPT_LANGUAGE="pt-BR"))
    assert "Recarga de crédito" in text
    assert "top-up" not in text and "wallet_topup" not in text
    text = visible_text(client.get(f"/payments/{machine.reference}/", HTTP_ACCEPT_LANGUAGE="en"))
    assert "Machine time" in text and "machine_session" not in text


@pytest.mark.django_db
def test_plan_pages_show_names_not_tiers(client):

    basic = PlanFactory(
        code="basic-brl", name="Basic", tier="tier_basic", price=Decimal("10.00"), currency="BRL"
    )
    pro = PlanFactory(
        code="pro-brl", name="Professional", tier="tier_pro", price=Decimal("20.00"), currency="BRL"
    )
    customer = UserFactory()
    subscription = SubscriptionFactory(user=customer, plan=pro, active=True)
    SubscriptionEventFactory(
        subscription=subscription,
        user=customer,
        type="upgraded",
        data={"plan": pro.code, "previous_plan": basic.code, "days": 30},
    )
    client.force_login(customer)
    for url in ("/billing/", "/billing/subscription/"):
        response = client.get(url, HTTP_ACCEPT_LANGUAGE="en")
        text = visible_text(response)
        for code in ("tier_basic", "tier_pro", "basic-brl", "pro-brl"):
            assert code not in text, (url, code)
        assert "Professional" in text, url
        assert 'data-tier="tier_pro"' in response.content.decode()
    text = visible_text(client.get("/billing/subscription/", HTTP_ACCEPT_LANGUAGE="en"))
    assert "from Basic" in text
