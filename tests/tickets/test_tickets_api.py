"""GET /api/tickets/: the queue for operators and staff, filtered by status, service, day
and desk; a bad filter is a clear 400."""

from datetime import timedelta
from decimal import Decimal

import pytest
from django.utils import timezone

from tests.factories import ServiceFactory, UserFactory
from tests.tickets.conftest import paid_ticket
from tickets.models import Ticket
from tickets.services.desks import desk_call_next

pytestmark = pytest.mark.django_db


@pytest.fixture
def queue(service, dummy_printer):
    """A-001 called to desk 3, A-002 waiting, B-001 called to desk 4, B-002 printing
    (its job not sent), A-003 waiting from yesterday."""
    other = ServiceFactory(name="Câmbio", prefix="B", price=Decimal("8.00"))
    operator = UserFactory(roles=["operator"])
    tickets = {
        "A1": paid_ticket(service, customer_name="Iñés Conceição Souza"),
        "A2": paid_ticket(service),
        "B1": paid_ticket(other),
        "B2": paid_ticket(other, printed=False),
        "A3": paid_ticket(service),
    }
    yesterday = timezone.localdate() - timedelta(days=1)
    Ticket.objects.filter(pk=tickets["A3"].pk).update(day=yesterday)
    desk_call_next(operator=operator, desk="3", service_id=service.pk)
    desk_call_next(operator=operator, desk="4", service_id=other.pk)
    return {"operator": operator, "other": other, "yesterday": yesterday, **tickets}


def codes(response) -> list[str]:
    assert response.status_code == 200, response.content
    return [t["code"] for t in response.json()["results"]]


def test_operators_filter_the_queue(client, queue, service):
    client.force_login(queue["operator"])
    get = client.get
    assert codes(get("/api/tickets/", {"status": "in_queue"})) == ["A-002", "A-003"]
    assert codes(get("/api/tickets/?status=called,paid")) == ["A-001", "B-001", "B-002"]
    assert codes(get("/api/tickets/?status=called&status=paid")) == ["A-001", "B-001", "B-002"]
    assert codes(get("/api/tickets/", {"service": queue["other"].pk})) == ["B-001", "B-002"]
    assert codes(get("/api/tickets/", {"desk": "4"})) == ["B-001"]
    day = queue["yesterday"].isoformat()
    assert codes(get("/api/tickets/", {"day": day})) == ["A-003"]
    assert codes(
        get("/api/tickets/", {"status": "in_queue", "service": service.pk, "day": day})
    ) == ["A-003"]

    body = get("/api/tickets/", {"desk": "3"}).json()
    assert body["count"] == 1
    [ticket] = body["results"]
    assert ticket["status"] == "called" and ticket["desk"] == "3"
    assert ticket["customer_name"] == "Iñés S."  # masked, as on the paper
    assert ticket["service_prefix"] == "A" and ticket["called_at"]
    assert ticket["operator"] == queue["operator"].pk
    assert ticket["reference"] == queue["A1"].payment_session.reference


@pytest.mark.parametrize(
    "query, field",
    [
        ({"status": "waiting"}, "status"),
        ({"status": "in_queue,bogus"}, "status"),
        ({"status": ""}, "status"),
        ({"service": "abc"}, "service"),
        ({"service": "0"}, "service"),
        ({"service": "987654"}, "service"),
        ({"day": "2026-13-01"}, "day"),
        ({"day": "yesterday"}, "day"),
        ({"desk": "x" * 21}, "desk"),
        ({"desk": "3\x00"}, "desk"),
    ],
)
def test_a_bad_filter_is_a_clear_400(client, query, field):
    client.force_login(UserFactory(roles=["operator"]))
    response = client.get("/api/tickets/", query)
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["code"] == "invalid_filter"
    assert error["message"].startswith(f"Invalid filter ({field}: ")
    assert list(error["details"]) == [field] and error["details"][field]


def test_the_unknown_status_names_the_choices(client):
    client.force_login(UserFactory(roles=["operator"]))
    message = client.get("/api/tickets/", {"status": "waiting"}).json()["error"]["message"]
    assert "'waiting'" in message and "in_queue" in message and "called" in message


@pytest.mark.parametrize(
    "roles, status", [(["operator"], 200), (["staff"], 200), (["cashier"], 403), ([], 403)]
)
def test_for_operators_and_staff_only(client, roles, status):
    client.force_login(UserFactory(roles=roles))
    assert client.get("/api/tickets/").status_code == status


def test_pages_are_limited(client, queue):
    client.force_login(queue["operator"])
    body = client.get("/api/tickets/", {"limit": 2, "offset": 1}).json()
    assert body["count"] == 5
    assert [t["code"] for t in body["results"]] == ["A-002", "B-001"]


def test_documented_in_the_schema(client):
    schema = client.get("/api/schema/", {"format": "json"}).json()
    operation = schema["paths"]["/api/tickets/"]["get"]
    parameters = {p["name"]: p for p in operation["parameters"]}
    assert {"status", "service", "day", "desk", "limit", "offset"} <= set(parameters)
    assert "in_queue" in parameters["status"]["schema"]["items"]["enum"]
    assert parameters["status"]["explode"] is False
    assert {"200", "400", "403"} <= set(operation["responses"])
