"""Amounts are written for the reader: Babel's conventions for the active language, the
currency's symbol in its place; what machines read keeps the plain value."""

from decimal import Decimal

import pytest
from django.template import Context, Template
from django.utils import translation

from core.formatting import babel_locale, money_text
from payments.models import WalletAccount
from payments.services.wallet import wallet_account_get
from tests.factories import PlanFactory, UserFactory

NBSP = "\xa0"


def render(language: str, amount, currency: str) -> str:
    with translation.override(language):
        template = Template("{% load money %}{{ amount|money:currency }}")
        return template.render(Context({"amount": amount, "currency": currency}))


@pytest.mark.parametrize(
    ("language", "amount", "currency", "shown"),
    [
        ("en", Decimal("20.00"), "BRL", "R$20.00"),
        ("pt-br", Decimal("20.00"), "BRL", f"R${NBSP}20,00"),
        ("es", Decimal("20.00"), "BRL", f"20,00{NBSP}BRL"),
        ("en", Decimal("9.99"), "USD", "$9.99"),
        ("pt-br", Decimal("9.99"), "USD", f"US${NBSP}9,99"),
        ("es", Decimal("9.99"), "USD", f"9,99{NBSP}US$"),
        ("en", Decimal("99000.00"), "UZS", "UZS99,000.00"),
        ("pt-br", Decimal("99000.00"), "UZS", f"UZS{NBSP}99.000,00"),
        ("es", Decimal("99000.00"), "UZS", f"99.000,00{NBSP}UZS"),
        ("pt-br", "1234.5", "brl", f"R${NBSP}1.234,50"),  # text as the API gives it
        ("en", 25, "EUR", "€25.00"),
    ],
)
def test_the_filter_writes_amounts_as_the_reader_does(language, amount, currency, shown):
    assert render(language, amount, currency) == shown


def test_no_digit_is_lost_nor_invented():
    # A crypto amount keeps every decimal it has; a whole amount gets the usual two.
    assert money_text(Decimal("0.0000635"), "BTC", language="en") == "0.0000635 BTC"
    assert money_text(Decimal("0.0000635"), "BTC", language="pt-br") == "0,0000635 BTC"
    assert money_text(Decimal("-5.1"), "BRL", language="pt-br") == f"-R${NBSP}5,10"


def test_odd_input_is_shown_as_it_is():
    assert money_text(None, "BRL") == ""
    assert money_text("", "BRL") == ""
    assert money_text("n/a", "BRL") == "n/a BRL"
    assert money_text(Decimal("7"), "", language="pt-br") == "7,00"
    # A code that is no ISO 4217 currency (a coin, a typo) follows the number.
    assert money_text(Decimal("7"), "ZZZ", language="en") == "7.00 ZZZ"


def test_django_languages_map_to_babel_locales():
    assert babel_locale("en") == "en"
    assert babel_locale("pt-br") == "pt_BR"
    assert babel_locale("es") == "es"
    assert babel_locale("xx-nowhere") == "en"


def plans_page(client, language: str) -> str:
    return client.get("/billing/", HTTP_ACCEPT_LANGUAGE=language).content.decode()


@pytest.mark.django_db
def test_plans_page_shows_prices_in_the_readers_language(client):
    PlanFactory(
        code="basic-uzs", name="Basic", tier="basic", price=Decimal("99000.00"), currency="UZS"
    )
    PlanFactory(code="pro-usd", name="Pro", tier="pro", price=Decimal("9.99"), currency="USD")
    client.force_login(UserFactory(roles=["customer"]))
    english = plans_page(client, "en")
    assert "<strong>UZS99,000.00</strong>" in english and "<strong>$9.99</strong>" in english
    assert "You pay <strong>$9.99</strong>" in english
    assert "99000.00 UZS" not in english
    portuguese = plans_page(client, "pt-BR")
    assert f"<strong>UZS{NBSP}99.000,00</strong>" in portuguese
    assert f"<strong>US${NBSP}9,99</strong>" in portuguese
    # Machines still read the plain value.
    assert 'data-total="99000.00"' in english and 'data-total="9.99"' in english


@pytest.mark.django_db
def test_wallet_page_shows_the_balance_in_the_readers_language(client):
    customer = UserFactory(roles=["customer"])
    account = wallet_account_get(user=customer)
    WalletAccount.objects.filter(pk=account.pk).update(balance=Decimal("1520.00"))
    client.force_login(customer)
    english = client.get("/payments/", HTTP_ACCEPT_LANGUAGE="en").content.decode()
    assert 'data-balance="1520.00">R$1,520.00</p>' in english
    portuguese = client.get("/payments/", HTTP_ACCEPT_LANGUAGE="pt-BR").content.decode()
    assert f">R${NBSP}1.520,00</p>" in portuguese
    spanish = client.get("/payments/", HTTP_ACCEPT_LANGUAGE="es").content.decode()
    assert f">1.520,00{NBSP}BRL</p>" in spanish
