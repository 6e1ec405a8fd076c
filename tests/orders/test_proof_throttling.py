"""POST /api/orders/<id>/proof/: at most THROTTLE_PROOF_UPLOAD uploads per user, then 429
before the upload is even read."""

import pytest

from orders.models import PaymentProof
from tests.orders.conftest import make_order
from tests.orders.test_orders import api_upload
from tests.payments.test_throttling import rates

pytestmark = pytest.mark.django_db


def test_beyond_the_rate_uploads_get_429_and_nothing_is_stored(
    client, settings, staff_users, private_media
):
    rates(settings, proof_upload="2/min")
    waiter = staff_users["waiter"]
    orders = [make_order(waiter) for _ in range(3)]
    client.force_login(waiter)
    assert [api_upload(client, order).status_code for order in orders[:2]] == [201, 201]

    refused = api_upload(client, orders[2])

    assert refused.status_code == 429
    error = refused.json()["error"]
    assert error["code"] == "throttled" and error["details"]["retry_after"] >= 1
    assert refused["Retry-After"]
    assert PaymentProof.objects.count() == 2
    assert not PaymentProof.objects.filter(order=orders[2]).exists()
    # Each waiter has a count of their own.
    other = staff_users["other_waiter"]
    client.force_login(other)
    assert api_upload(client, make_order(other)).status_code == 201


def test_refused_uploads_count_too(client, settings, staff_users, private_media):
    """Every attempt costs parsing and checking a file: failures are counted as well."""
    rates(settings, proof_upload="2/min")
    order = make_order(staff_users["waiter"])
    client.force_login(staff_users["waiter"])
    assert api_upload(client, order, content=b"not an image").status_code == 400
    assert api_upload(client, order, content=b"not an image").status_code == 400
    assert api_upload(client, order).status_code == 429
    assert not PaymentProof.objects.exists()
