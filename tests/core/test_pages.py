"""One view serves a page and its re-fetched fragment: the fragment alone for htmx and for
the fragment's own URL, the whole page otherwise."""

import pytest
from django.contrib.auth.models import AnonymousUser
from django.test import RequestFactory
from django_htmx.middleware import HtmxDetails

from core.pages import fragment_view, render_page
from tests.factories import UserFactory


def page(request):
    return render_page(
        request, "notifications/activity.html", "notifications/_activity_list.html", {}
    )


def _get(**headers):
    request = RequestFactory().get("/page/", headers=headers)
    request.htmx = HtmxDetails(request)
    request.user = AnonymousUser()
    return request


def test_a_page_load_gets_the_whole_page():
    assert b"<html" in page(_get()).content


def test_htmx_gets_the_fragment_alone():
    assert b"<html" not in page(_get(**{"HX-Request": "true"})).content


def test_the_fragment_url_gets_the_fragment_without_htmx():
    response = fragment_view(page)(_get())
    assert response.status_code == 200 and b"<html" not in response.content
    assert fragment_view(page).__name__ == "page"


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("url", "fragment_url"),
    [("/activity/", "/activity/list/"), ("/operator/", "/operator/panel/")],
)
def test_a_live_page_and_its_fragment_url(client, url, fragment_url):
    client.force_login(UserFactory(roles=["operator"]))
    assert "<html" in client.get(url).content.decode()
    assert "<html" not in client.get(fragment_url).content.decode()
    assert "<html" not in client.get(url, headers={"HX-Request": "true"}).content.decode()
