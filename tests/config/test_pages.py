import pytest
from django.contrib.auth.models import Group
from django.urls import reverse

from tests.factories import TokenFactory, UserFactory

pytestmark = pytest.mark.django_db


def test_roles_exist_as_groups():
    assert set(Group.objects.values_list("name", flat=True)) >= {
        "cashier",
        "waiter",
        "kitchen",
        "operator",
        "staff",
    }


def test_home_shows_each_role_its_pages(client):
    waiter = UserFactory(roles=["waiter"])
    staff = UserFactory(roles=["staff"], is_staff=True)
    client.force_login(waiter)
    page = client.get("/").content.decode()
    assert reverse("activity") in page
    assert reverse("admin:index") not in page
    client.force_login(staff)
    page = client.get("/").content.decode()
    assert reverse("admin:index") in page
    assert reverse("api-docs") in page


def test_home_for_anonymous_offers_login(client):
    page = client.get("/").content.decode()
    assert reverse("login") in page
    assert 'data-events="on"' not in page


def test_language_comes_from_the_browser_and_the_switcher(client):
    client.force_login(UserFactory())
    assert (
        "Atividade ao vivo"
        in client.get("/activity/", HTTP_ACCEPT_LANGUAGE="pt-BR").content.decode()
    )
    assert (
        "Actividad en vivo" in client.get("/activity/", HTTP_ACCEPT_LANGUAGE="es").content.decode()
    )
    client.post(reverse("set_language"), {"language": "es", "next": "/"})
    assert (
        "Actividad en vivo"
        in client.get("/activity/", HTTP_ACCEPT_LANGUAGE="pt-BR").content.decode()
    )


def test_activity_requires_login(client):
    response = client.get("/activity/")
    assert response.status_code == 302
    assert reverse("login") in response["Location"]


def test_api_accepts_session_and_token_authentication(client):
    cashier = UserFactory(roles=["cashier"])
    token = TokenFactory(user=cashier)
    anonymous = client.get("/api/me/")
    assert anonymous.status_code in (401, 403)
    assert "error" in anonymous.json()
    by_token = client.get("/api/me/", HTTP_AUTHORIZATION=f"Token {token.key}")
    assert by_token.status_code == 200
    assert by_token.json()["roles"] == ["cashier"]
    assert by_token.json()["audiences"] == [f"user:{cashier.pk}", "role:cashier"]
    client.force_login(cashier)
    assert client.get("/api/me/").json()["id"] == cashier.pk


def test_openapi_schema_and_docs(client):
    client.force_login(UserFactory(roles=["staff"], is_staff=True))
    schema = client.get("/api/schema/")
    assert schema.status_code == 200
    assert b"/api/me/" in schema.content
    assert client.get("/api/docs/").status_code == 200


def test_demo_data_is_idempotent(capsys, settings):
    from django.contrib.auth import get_user_model
    from django.core.management import CommandError, call_command

    with pytest.raises(CommandError, match="DEBUG off"):
        call_command("demo_data")
    settings.DEBUG = True

    call_command("demo_data")
    call_command("demo_data")
    users = get_user_model().objects
    assert (
        users.filter(
            username__in=["admin", "staff", "cashier", "waiter", "kitchen", "operator", "customer"]
        ).count()
        == 7
    )
    assert users.get(username="admin").is_superuser
    assert users.get(username="cashier").groups.filter(name="cashier").exists()
    assert users.get(username="customer").check_password("confirma-demo")
    assert "cashier" in capsys.readouterr().out


def test_prune_events_keeps_recent_ones():
    from datetime import timedelta

    from django.core.management import CommandError, call_command
    from django.utils import timezone

    from notifications.models import Event
    from tests.factories import EventFactory

    old = EventFactory(created_at=timezone.now() - timedelta(days=40))
    new = EventFactory()
    call_command("prune_events", "--older-than", "30d", "--batch-size", "1")
    assert list(Event.objects.values_list("id", flat=True)) == [new.id]
    assert old.id != new.id
    with pytest.raises(CommandError):
        call_command("prune_events", "--older-than", "forever")
