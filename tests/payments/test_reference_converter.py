"""`<reference:…>` in a URL pattern matches a payment reference and nothing else: a malformed
one is 404 from the resolver, before any view looks it up."""

import pytest
from django.urls import Resolver404, resolve, reverse

from tests.factories import PaymentSessionFactory, UserFactory

MALFORMED = ["ps_%00", "ps.dot", "ps%20space", "p" * 65, "ps_%C3%A9"]


@pytest.mark.parametrize("reference", MALFORMED)
def test_the_resolver_refuses_a_malformed_reference(reference):
    for path in (
        f"/payments/{reference}/",
        f"/payments/{reference}/status/",
        f"/api/payment-sessions/{reference}/",
        f"/kiosk/wait/{reference}/",
    ):
        with pytest.raises(Resolver404):
            resolve(path)


@pytest.mark.django_db
@pytest.mark.parametrize("reference", MALFORMED)
def test_a_malformed_reference_is_not_found(client, reference):
    client.force_login(UserFactory(roles=["staff"]))
    assert client.get(f"/payments/{reference}/").status_code == 404
    response = client.get(f"/api/payment-sessions/{reference}/")
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "not_found"


def test_a_well_formed_reference_reaches_its_view():
    reference = "ps_" + "Ab9_-" * 12  # 63 characters
    match = resolve(f"/payments/{reference}/")
    assert match.url_name == "payment-detail" and match.kwargs == {"reference": reference}
    assert reverse("kiosk-wait", args=[reference]) == f"/kiosk/wait/{reference}/"


@pytest.mark.django_db
def test_the_owner_opens_their_payment_by_its_reference(client):
    owner = UserFactory()
    session = PaymentSessionFactory(user=owner)
    client.force_login(owner)
    assert client.get(reverse("payment-detail", args=[session.reference])).status_code == 200
