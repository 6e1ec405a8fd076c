"""One role check for pages (`role_required`) and one for the API (`RolePermission`):
visitors go to the login page, users without the role get 403, staff always pass."""

import pytest
from django.contrib.auth.models import AnonymousUser
from django.core.exceptions import PermissionDenied
from django.http import HttpResponse
from django.test import RequestFactory

from core.roles import RolePermission, role_required
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db


@role_required("cashier", "waiter")
def till(request):
    return HttpResponse("till")


def _get(user):
    request = RequestFactory().get("/till/?day=1")
    request.user = user
    return request


def test_a_visitor_goes_to_the_login_page_and_comes_back():
    response = till(_get(AnonymousUser()))
    assert response.status_code == 302
    assert response["Location"] == "/accounts/login/?next=/till/%3Fday%3D1"


def test_a_user_without_the_role_is_refused():
    with pytest.raises(PermissionDenied):
        till(_get(UserFactory(roles=["kitchen"])))


@pytest.mark.parametrize("roles", [["cashier"], ["waiter"], ["staff"]])
def test_any_of_the_roles_or_staff_opens_the_page(roles):
    response = till(_get(UserFactory(roles=roles)))
    assert response.status_code == 200 and response.content == b"till"


def test_an_inactive_user_with_the_role_is_refused():
    user = UserFactory(roles=["cashier"], is_active=False)
    with pytest.raises(PermissionDenied):
        till(_get(user))


def test_the_api_permission_asks_for_the_role():
    permission = RolePermission.of("operator")()
    assert permission.roles == ("operator",)
    assert not permission.has_permission(_get(AnonymousUser()), None)
    assert not permission.has_permission(_get(UserFactory(roles=["cashier"])), None)
    assert permission.has_permission(_get(UserFactory(roles=["operator"])), None)
    assert permission.has_permission(_get(UserFactory(roles=["staff"])), None)


def test_a_refused_page_answers_403_through_the_stack(client):
    client.force_login(UserFactory(roles=["kitchen"]))
    assert client.get("/cashier/").status_code == 403
    assert client.get("/operator/").status_code == 403
    assert client.get("/operations/").status_code == 403
    client.logout()
    assert client.get("/cashier/")["Location"].startswith("/accounts/login/?next=/cashier/")
