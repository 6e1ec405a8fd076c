"""A string PostgreSQL cannot hold (a NUL) in something a page or the API looks up is
"not found", never a DataError and a 500 (core/text.py)."""

import pytest

from tests.factories import KioskFactory, TokenFactory, UserFactory
from tickets.services import kiosk_token_rotate

pytestmark = pytest.mark.django_db


@pytest.fixture
def staff(client):
    user = UserFactory(roles=["staff", "customer"], is_staff=True)
    client.force_login(user)
    return user


@pytest.mark.parametrize(
    "url, status",
    [
        ("/api/payment-sessions/ps_%00/", 404),
        ("/payments/ps_%00/", 404),
        ("/payments/ps_%00/status/", 404),
        ("/billing/return/?reference=ps_%00", 200),
        ("/billing/return/?payment_id=1%00", 200),
    ],
)
def test_a_nul_in_a_reference_is_not_found(client, staff, url, status):
    response = client.get(url)
    assert response.status_code == status
    if status == 200:
        assert response.context["session"] is None


def test_a_nul_in_a_kiosk_wait_reference_is_not_found(client):
    token = kiosk_token_rotate(kiosk=KioskFactory(name="Totem NUL"))
    assert client.get(f"/kiosk/wait/ps_%00/?token={token}").status_code == 404


def test_a_nul_in_a_repair_reference_is_nothing_to_repair(client, staff):
    response = client.post("/operations/repair/", {"reference": "ps_\x00"})
    assert response.status_code == 302 and response.url == "/operations/"


def test_a_nul_in_an_api_token_is_refused(client):
    key = TokenFactory(user=UserFactory(roles=["staff"])).key
    response = client.post(
        "/api/integration/test/", headers={"authorization": f"Token {key[:-1]}\x00"}
    )
    assert response.status_code == 403


def test_an_api_token_with_a_nul_is_refused_not_a_crash(client):
    response = client.get("/api/me/", headers={"Authorization": "Token abc\x00def"})
    assert response.status_code in (401, 403)
    assert response.json()["error"]
