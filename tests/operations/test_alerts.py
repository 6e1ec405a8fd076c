"""Alerts: one row per problem, staff told once per window, by event, mail and webhook."""

import json
import logging
import threading
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from django.contrib.admin.helpers import ACTION_CHECKBOX_NAME
from django.core import mail
from django.core.mail.backends.base import BaseEmailBackend
from django.db import connection, transaction
from django.utils import timezone
from django_tasks_db.models import DBTaskResult

from notifications.models import Alert, Event
from notifications.services import alert_raise, alert_resolve
from notifications.tasks import alert_webhook_send
from tests.factories import UserFactory

WEBHOOK_TASK = "notifications.tasks.alert_webhook_send"
SECRET = "tok-7f3c9a1e5b2d4c6a8e0f"


@pytest.fixture
def told(settings):
    """Staff reachable by mail and by an alert webhook (nothing listens on port 9)."""
    settings.ADMINS = [("Ops", "ops@example.com")]
    settings.ALERT_WEBHOOK_URL = "http://127.0.0.1:9/hooks/x"
    settings.ALERT_DEDUPE_SECONDS = 900
    return settings


def webhook_tasks():
    return DBTaskResult.objects.filter(task_path=WEBHOOK_TASK)


@pytest.mark.django_db(transaction=True)
def test_a_repeat_within_the_window_only_counts(told, caplog):
    first = alert_raise(code="printer.down", message="Printer offline", context={"printer": 3})
    second = alert_raise(code="printer.down", message="Printer offline", context={"printer": 3})

    alert = Alert.objects.get()
    assert first.pk == second.pk == alert.pk
    assert alert.count == 2 and alert.last_raised_at > alert.first_raised_at
    assert len(mail.outbox) == 1
    assert mail.outbox[0].to == ["ops@example.com"]
    assert "printer.down" in mail.outbox[0].subject
    assert '"printer": 3' in mail.outbox[0].body
    assert webhook_tasks().count() == 1
    errors = [
        r for r in caplog.records if r.levelno == logging.ERROR and "printer.down" in r.msg % r.args
    ]
    assert len(errors) == 1
    event = Event.objects.get(type="alert.raised")
    assert (event.audience, event.payload) == (
        "role:staff",
        {
            "code": "printer.down",
            "message": "Printer offline",
            "context": {"printer": 3},
            "alert": alert.pk,
            "count": 1,
        },
    )


@pytest.mark.django_db(transaction=True)
def test_staff_are_told_again_once_the_window_has_passed(told):
    alert_raise(code="printer.down", message="Printer offline", context={"printer": 3})
    Alert.objects.update(last_notified_at=timezone.now() - timedelta(seconds=901))
    alert_raise(code="printer.down", message="Still offline", context={"printer": 3})

    alert = Alert.objects.get()
    assert (alert.count, alert.message) == (2, "Still offline")
    assert len(mail.outbox) == 2
    assert webhook_tasks().count() == 2
    counts = list(Event.objects.order_by("id").values_list("payload__count", flat=True))
    assert counts == [1, 2]


@pytest.mark.django_db(transaction=True)
def test_context_or_dedupe_key_decides_what_is_the_same_problem(told):
    alert_raise(code="payment.late", message="Late", context={"reference": "ps_a"})
    alert_raise(code="payment.late", message="Late", context={"reference": "ps_b"})
    # Key order does not matter.
    alert_raise(code="x.y", message="m", context={"a": 1, "b": 2})
    alert_raise(code="x.y", message="m", context={"b": 2, "a": 1})
    # An explicit key groups different contexts.
    alert_raise(code="webhook.dead", message="dead", context={"error": "one"}, dedupe_key="d:1")
    alert_raise(code="webhook.dead", message="dead", context={"error": "two"}, dedupe_key="d:1")

    counts = dict(Alert.objects.exclude(code="payment.late").values_list("code", "count"))
    assert Alert.objects.filter(code="payment.late").count() == 2
    assert counts["x.y"] == 2 and counts["webhook.dead"] == 2
    assert Alert.objects.get(code="webhook.dead").dedupe_key == "d:1"
    assert len(mail.outbox) == 4


@pytest.mark.django_db(transaction=True)
def test_on_commit_inside_a_transaction_and_nothing_after_a_rollback(told):
    with transaction.atomic():
        alert_raise(code="in.tx", message="inside", context={})
        assert len(mail.outbox) == 0 and webhook_tasks().count() == 0
    assert len(mail.outbox) == 1 and webhook_tasks().count() == 1

    with pytest.raises(RuntimeError), transaction.atomic():
        alert_raise(code="rolled.back", message="gone", context={})
        raise RuntimeError("the caller failed")
    assert not Alert.objects.filter(code="rolled.back").exists()
    assert len(mail.outbox) == 1 and webhook_tasks().count() == 1


@pytest.mark.django_db(transaction=True)
def test_a_resolved_alert_is_closed_and_the_next_raise_opens_a_new_one(told):
    staff = UserFactory(is_staff=True)
    alert = alert_raise(code="disk.full", message="Disk full", context={})
    assert alert_resolve(alert_id=alert.pk, user=staff, notes="cleaned /var")
    assert not alert_resolve(alert_id=alert.pk, user=staff)
    alert.refresh_from_db()
    assert (alert.resolved_by, alert.notes) == (staff, "cleaned /var")

    again = alert_raise(code="disk.full", message="Disk full", context={})
    assert again.pk != alert.pk and again.count == 1
    assert len(mail.outbox) == 2


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_concurrent_raises_of_one_problem_make_one_alert(told):
    threads, barrier, errors = 8, threading.Barrier(8), []

    def raise_it():
        try:
            barrier.wait(timeout=10)
            with transaction.atomic():
                alert_raise(code="race", message="same", context={"n": 1})
        except Exception as exc:  # pragma: no cover - reported below
            errors.append(exc)
        finally:
            connection.close()

    workers = [threading.Thread(target=raise_it) for _ in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(timeout=30)
    assert errors == []
    alert = Alert.objects.get(code="race")
    assert alert.count == threads
    assert len(mail.outbox) == 1
    assert webhook_tasks().count() == 1
    assert Event.objects.filter(type="alert.raised").count() == 1


class BrokenMailBackend(BaseEmailBackend):
    def send_messages(self, email_messages):
        raise ConnectionRefusedError("smtp is down")


@pytest.mark.django_db(transaction=True)
def test_a_mail_failure_is_logged_not_raised(told, caplog):
    told.EMAIL_BACKEND = "tests.operations.test_alerts.BrokenMailBackend"
    alert = alert_raise(code="mail.broken", message="m", context={})
    assert Alert.objects.filter(pk=alert.pk).exists()
    assert "mail to admins failed (ConnectionRefusedError)" in caplog.text


@pytest.mark.django_db(transaction=True)
def test_no_mail_and_no_webhook_when_nobody_is_configured(settings):
    settings.ADMINS = []
    settings.ALERT_WEBHOOK_URL = ""
    alert_raise(code="quiet", message="m", context={})
    assert len(mail.outbox) == 0 and webhook_tasks().count() == 0
    assert Event.objects.filter(type="alert.raised").count() == 1


# --- The alert webhook, against a real HTTP server ------------------------------------------


class Receiver(BaseHTTPRequestHandler):
    def do_POST(self):
        body = self.rfile.read(int(self.headers["Content-Length"]))
        self.server.received.append(
            {"path": self.path, "type": self.headers["Content-Type"], "body": json.loads(body)}
        )
        status = self.server.statuses.pop(0) if self.server.statuses else 200
        self.send_response(status)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args):
        pass


@pytest.fixture
def receiver():
    server = ThreadingHTTPServer(("127.0.0.1", 0), Receiver)
    server.received, server.statuses = [], []
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


@pytest.mark.django_db(transaction=True)
def test_webhook_post_is_retried_after_a_500_and_never_logs_the_secret(settings, receiver, caplog):
    caplog.set_level(logging.DEBUG)
    port = receiver.server_address[1]
    settings.ADMINS = []
    settings.ALERT_WEBHOOK_URL = f"http://127.0.0.1:{port}/hooks/{SECRET}?token={SECRET}"
    settings.ALERT_WEBHOOK_MAX_ATTEMPTS = 3
    receiver.statuses = [500]

    alert = alert_raise(code="printer.down", message="Printer offline", context={"printer": 3})
    first = webhook_tasks().get()
    kwargs = first.args_kwargs["kwargs"]
    assert kwargs["alert_id"] == alert.pk and kwargs["attempt"] == 1
    assert SECRET not in json.dumps(first.args_kwargs)

    before = timezone.now()
    assert alert_webhook_send.call(**kwargs) == "retrying"
    retry = webhook_tasks().exclude(pk=first.pk).get()
    assert retry.args_kwargs["kwargs"] == {**kwargs, "attempt": 2}
    assert (retry.run_after - before).total_seconds() == pytest.approx(30, abs=2)

    assert alert_webhook_send.call(**retry.args_kwargs["kwargs"]) == "sent"
    assert webhook_tasks().count() == 2  # no further attempt queued
    assert [r["path"] for r in receiver.received] == [f"/hooks/{SECRET}?token={SECRET}"] * 2
    expected = {
        "code": "printer.down",
        "message": "Printer offline",
        "context": {"printer": 3},
        "raised_at": kwargs["raised_at"],
        "count": 1,
    }
    assert all(r["body"] == expected for r in receiver.received)
    assert all(r["type"] == "application/json" for r in receiver.received)

    assert f"127.0.0.1:{port}" in caplog.text
    assert "HTTP 500" in caplog.text
    assert SECRET not in caplog.text


@pytest.mark.django_db(transaction=True)
def test_webhook_gives_up_after_the_last_attempt(settings, receiver, caplog):
    port = receiver.server_address[1]
    settings.ADMINS = []
    settings.ALERT_WEBHOOK_URL = f"http://127.0.0.1:{port}/{SECRET}"
    settings.ALERT_WEBHOOK_MAX_ATTEMPTS = 2
    receiver.statuses = [503, 503]
    alert = alert_raise(code="x", message="m", context={})
    raised_at = webhook_tasks().get().args_kwargs["kwargs"]["raised_at"]

    assert alert_webhook_send.call(alert_id=alert.pk, raised_at=raised_at) == "retrying"
    assert alert_webhook_send.call(alert_id=alert.pk, raised_at=raised_at, attempt=2) == "gave_up"
    assert webhook_tasks().count() == 2
    assert len(receiver.received) == 2
    assert "gave up after 2 attempts" in caplog.text
    assert SECRET not in caplog.text


@pytest.mark.django_db(transaction=True)
def test_an_unreachable_webhook_is_retried_without_quoting_the_url(settings, caplog):
    caplog.set_level(logging.DEBUG)
    settings.ADMINS = []
    settings.ALERT_WEBHOOK_URL = f"http://127.0.0.1:9/{SECRET}"
    alert = alert_raise(code="x", message="m", context={})
    assert alert_webhook_send.call(alert_id=alert.pk, raised_at="t") == "retrying"
    assert "127.0.0.1:9" in caplog.text and SECRET not in caplog.text


# --- Admin ------------------------------------------------------------------------------------


@pytest.mark.django_db
def test_admin_lists_filters_and_resolves_alerts(client, settings):
    settings.ADMINS = []
    settings.ALERT_WEBHOOK_URL = ""
    staff = UserFactory(is_staff=True, is_superuser=True)
    client.force_login(staff)
    open_alert = alert_raise(code="printer.down", message="Printer offline", context={"p": 1})
    other = alert_raise(code="disk.full", message="Disk full", context={})

    page = client.get("/admin/notifications/alert/?resolved_at__isnull=True")
    assert page.status_code == 200 and b"printer.down" in page.content
    assert client.get(f"/admin/notifications/alert/{open_alert.pk}/change/").status_code == 200

    url = "/admin/notifications/alert/"
    data = {"action": "mark_resolved", ACTION_CHECKBOX_NAME: [open_alert.pk]}
    assert b"Notes" in client.post(url, data).content  # asks first
    client.post(url, {**data, "apply": "1", "notes": "restarted the printer"})
    open_alert.refresh_from_db()
    other.refresh_from_db()
    assert open_alert.resolved_at and open_alert.resolved_by == staff
    assert open_alert.notes == "restarted the printer"
    assert other.resolved_at is None
