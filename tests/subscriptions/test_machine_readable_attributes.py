"""`data-*` attributes stay machine-readable in every language: scripts and tests read
"49000.00", never "49000,00" (what Portuguese or Russian readers see is in the text)."""

import pytest
from django.utils import translation

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _language_back():
    # A request's Accept-Language stays active in this thread: later tests expect none.
    yield
    translation.deactivate()


@pytest.mark.parametrize("language", ["pt-br", "ru", "uz", "es"])
def test_plan_quotes_and_balances_keep_plain_numbers(client, plans, customer, language):
    client.force_login(customer)
    plans_page = client.get("/billing/", HTTP_ACCEPT_LANGUAGE=language).content.decode()
    assert 'data-total="49000.00"' in plans_page and 'data-total="9.99"' in plans_page
    assert 'data-discount="0.00"' in plans_page or 'data-discount="0"' in plans_page
    wallet = client.get("/payments/", HTTP_ACCEPT_LANGUAGE=language).content.decode()
    assert 'data-balance="0.00"' in wallet or 'data-balance="0"' in wallet
