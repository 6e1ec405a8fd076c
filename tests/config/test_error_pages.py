"""Error pages say what happened and what to do next; the browser finds a favicon."""

import pytest
from django.contrib.staticfiles import finders
from django.core.exceptions import PermissionDenied
from django.test import Client, RequestFactory
from django.urls import path
from django.views.defaults import server_error

from tests.factories import UserFactory


def broken(request):
    raise RuntimeError("boom")


def forbidden(request):
    raise PermissionDenied


# This module is also the URL configuration of the 500 tests: no `home` to reverse, no
# handler500 of its own (Django's server_error renders 500.html).
urlpatterns = [path("broken/", broken), path("forbidden/", forbidden)]


@pytest.mark.django_db
def test_403_says_the_page_is_not_for_this_account(client):
    client.force_login(UserFactory(roles=["customer"]))
    response = client.get("/operations/")
    assert response.status_code == 403
    page = response.content.decode()
    assert 'data-error="403"' in page and "You may not see this page" in page
    assert "ask a manager" in page and 'href="/" id="error-home"' in page
    assert 'class="topbar"' in page  # the usual layout, navigation included


@pytest.mark.django_db
def test_404_for_an_unknown_address(client):
    response = client.get("/no-such-page/")
    assert response.status_code == 404
    page = response.content.decode()
    assert 'data-error="404"' in page and "Page not found" in page
    assert 'href="/" id="error-home"' in page
    # The API keeps its JSON error.
    api = client.get("/api/no-such-thing/")
    assert api.status_code == 404 and api.json()["error"]["code"] == "not_found"


@pytest.mark.django_db
@pytest.mark.urls(__name__)
def test_500_through_the_handler_with_debug_off(settings):
    settings.DEBUG = False
    client = Client(raise_request_exception=False)
    response = client.get("/broken/")
    assert response.status_code == 500
    page = response.content.decode()
    assert 'data-error="500"' in page and "Something went wrong" in page
    assert "check whether the payment went through" in page and 'href="/"' in page
    assert "boom" not in page and "Traceback" not in page


def test_500_page_needs_no_database_nor_context_processors():
    """No django_db mark: any query here fails the test."""
    response = server_error(RequestFactory().get("/anything/"))
    assert response.status_code == 500
    assert "Something went wrong" in response.content.decode()


@pytest.mark.django_db
def test_favicon_leads_to_the_logo(client):
    response = client.get("/favicon.ico")
    assert response.status_code in (301, 302)
    location = response["Location"]
    assert location.endswith(".svg")
    assert finders.find("img/confirma.svg")
    logo = client.get(location)
    assert logo.status_code == 200
    assert b"<svg" in b"".join(logo.streaming_content if logo.streaming else [logo.content])
    home = client.get("/").content.decode()
    assert f'<link rel="icon" href="{location}" type="image/svg+xml">' in home
