"""Every admin page a staff member opens renders, and audit trails cannot be edited."""

import pytest
from django.contrib import admin

from tests.factories import UserFactory

pytestmark = pytest.mark.django_db


def test_every_changelist_renders(client):
    client.force_login(UserFactory(roles=["staff"], is_staff=True, is_superuser=True))
    for model in admin.site._registry:
        meta = model._meta
        url = f"/admin/{meta.app_label}/{meta.model_name}/"
        assert client.get(url).status_code == 200, url


@pytest.mark.parametrize(
    "url", ["/admin/notifications/event/add/", "/admin/payments/paymentaudit/add/"]
)
def test_append_only_logs_cannot_be_added_to(client, url):
    client.force_login(UserFactory(roles=["staff"], is_staff=True, is_superuser=True))
    assert client.get(url).status_code == 403
