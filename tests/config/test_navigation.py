"""The navigation shows each person their own pages; the home page never tells a customer
they lack a staff role."""

import re

import pytest
from django.urls import reverse

from core.navigation import nav_pages_for, pages_for
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db

CUSTOMER_PAGES = {"machines", "billing", "payments"}
STAFF_PAGES = {"admin:index", "api-docs", "operations", "healthz", "integration"}
ROLE_PAGES = {"cashier", "waiter", "kitchen", "operator"}


def nav_names(user) -> set[str]:
    return {page.url_name for page in nav_pages_for(user)}


def nav_links(client, user) -> set[str]:
    """The hrefs in the rendered page's main navigation."""
    client.force_login(user)
    page = client.get("/").content.decode()
    nav = re.search(r'<nav class="nav" id="site-nav".*?</nav>', page, re.S).group(0)
    return set(re.findall(r'href="([^"]+)"', nav))


def test_a_customer_sees_customer_pages_and_no_staff_or_role_pages():
    names = nav_names(UserFactory())
    assert CUSTOMER_PAGES | {"activity"} == names


def test_staff_see_staff_pages_not_every_customer_or_role_page():
    names = nav_names(UserFactory(roles=["staff"], is_staff=True))
    assert STAFF_PAGES | {"activity"} == names
    # They may still open the others: the home page lists them under "Also open to you".
    allowed = {p.url_name for p in pages_for(UserFactory(roles=["staff"], is_staff=True))}
    assert allowed >= CUSTOMER_PAGES | ROLE_PAGES


def test_a_superuser_gets_the_staff_navigation():
    assert nav_names(UserFactory(is_superuser=True, is_staff=True)) == STAFF_PAGES | {"activity"}


def test_a_role_sees_its_own_pages_only():
    assert nav_names(UserFactory(roles=["cashier"])) == {"cashier", "activity"}
    assert nav_names(UserFactory(roles=["waiter", "kitchen"])) == {"waiter", "kitchen", "activity"}


def test_an_anonymous_visitor_has_no_navigation():
    from django.contrib.auth.models import AnonymousUser

    assert nav_pages_for(AnonymousUser()) == []


def test_the_rendered_navigation_follows_the_role(client):
    customer_links = nav_links(client, UserFactory())
    assert reverse("payments") in customer_links
    assert reverse("admin:index") not in customer_links
    assert reverse("operations") not in customer_links
    staff_links = nav_links(client, UserFactory(roles=["staff"], is_staff=True))
    assert reverse("operations") in staff_links
    assert reverse("payments") not in staff_links
    assert reverse("machines") not in staff_links


def test_a_customer_home_says_what_they_can_do(client):
    client.force_login(UserFactory())
    page = client.get("/").content.decode()
    assert "You have no staff role" not in page
    intro = re.search(r'id="home-intro">(.*?)</p>', page, re.S).group(1)
    assert "top up your credit" in intro
    assert reverse("machines") in page and reverse("billing") in page


def test_staff_home_lists_the_other_pages_they_may_open(client):
    client.force_login(UserFactory(roles=["staff"], is_staff=True))
    page = client.get("/").content.decode()
    others = page[page.index('id="home-other-pages"') :]
    assert reverse("payments") in others and reverse("cashier") in others
