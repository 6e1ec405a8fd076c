"""POST /api/orders/<id>/proof/ and the waiter page's upload form: at most
THROTTLE_PROOF_UPLOAD uploads per user between them, then 429 before the upload is even read."""

import pytest

from orders.models import PaymentProof
from payments.models import PaymentSession
from tests.orders.conftest import make_order, png_bytes, upload
from tests.orders.test_orders import api_upload
from tests.payments.test_page_throttling import assert_refused
from tests.payments.test_throttling import rates

pytestmark = pytest.mark.django_db


def test_beyond_the_rate_uploads_get_429_and_nothing_is_stored(
    client, settings, staff_users, private_media
):
    rates(settings, proof_upload="2/hour")
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
    rates(settings, proof_upload="2/hour")
    order = make_order(staff_users["waiter"])
    client.force_login(staff_users["waiter"])
    assert api_upload(client, order, content=b"not an image").status_code == 400
    assert api_upload(client, order, content=b"not an image").status_code == 400
    assert api_upload(client, order).status_code == 429
    assert not PaymentProof.objects.exists()


# --- The waiter's page: the same budget, answered with the page ---


def page_upload(client, order, content=None):
    return client.post(
        f"/waiter/{order.pk}/proof/",
        {"method": "transfer", "file": upload(content or png_bytes())},
    )


def test_beyond_the_rate_the_waiter_page_answers_429_and_stores_nothing(
    client, settings, staff_users, private_media
):
    rates(settings, proof_upload="2/hour")
    waiter = staff_users["waiter"]
    orders = [make_order(waiter) for _ in range(3)]
    client.force_login(waiter)
    assert [page_upload(client, order).status_code for order in orders[:2]] == [302, 302]

    refused = page_upload(client, orders[2])

    assert_refused(refused)
    page = refused.content.decode()
    # The waiter's page, the order still to collect.
    assert 'id="waiter-list"' in page and f'data-order="{orders[2].pk}"' in page
    assert PaymentProof.objects.count() == 2
    assert not PaymentProof.objects.filter(order=orders[2]).exists()
    assert PaymentSession.objects.count() == 2
    assert len([f for f in private_media.rglob("*") if f.is_file()]) == 2  # no file either
    # Reading the page is not counted.
    assert client.get("/waiter/").status_code == 200


def test_the_waiter_page_and_the_api_share_one_budget(client, settings, staff_users, private_media):
    rates(settings, proof_upload="2/hour")
    waiter = staff_users["waiter"]
    orders = [make_order(waiter) for _ in range(4)]
    client.force_login(waiter)
    assert api_upload(client, orders[0]).status_code == 201
    assert page_upload(client, orders[1]).status_code == 302

    assert_refused(page_upload(client, orders[2]))
    assert api_upload(client, orders[3]).status_code == 429
    assert PaymentProof.objects.count() == 2


def test_refused_page_uploads_count_too(client, settings, staff_users, private_media):
    rates(settings, proof_upload="1/hour")
    order = make_order(staff_users["waiter"])
    client.force_login(staff_users["waiter"])
    assert page_upload(client, order, content=b"not an image").status_code == 302
    assert_refused(page_upload(client, order))
    assert not PaymentProof.objects.exists()
