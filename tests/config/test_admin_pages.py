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


CONFIRMA_APPS = {"config", "notifications", "payments", "subscriptions", "tickets", "orders"}


def test_a_staff_member_opens_every_confirma_changelist_but_not_users(client):
    """Not a superuser: what the staff group's permissions open (0003_staff_permissions)."""
    client.force_login(UserFactory(roles=["staff"], is_staff=True))
    index = client.get("/admin/")
    assert {app["app_label"] for app in index.context["app_list"]} == CONFIRMA_APPS
    for model in admin.site._registry:
        meta = model._meta
        url = f"/admin/{meta.app_label}/{meta.model_name}/"
        expected = 200 if meta.app_label in CONFIRMA_APPS else 403
        assert client.get(url).status_code == expected, url
