"""Alerts reach the team's chat, mailbox or incident tool: one Apprise URL per place, each
delivered by a retrying task of its own, the URLs never logged.

Every delivery here crosses real HTTP to a server in the test. Slack and Discord only post
to their own hosts, so their tests point Apprise's endpoint for them at the local server:
the payload is the one Slack and Discord receive.
"""

import io
import json
import logging
import subprocess
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from apprise.plugins.discord import NotifyDiscord
from apprise.plugins.slack import NotifySlack
from django.core.checks import run_checks
from django.core.management import CommandError, call_command
from django_tasks_db.models import DBTaskResult

from core.logging import redact
from notifications.alert_targets import alert_target_key, confirma_url_from_webhook
from notifications.models import Alert
from notifications.services import alert_raise
from notifications.tasks import alert_webhook_send

pytestmark = pytest.mark.django_db

ROOT = Path(__file__).resolve().parents[2]
TASK = "notifications.tasks.alert_webhook_send"
SLACK = ("T1JJ3T3L2", "A1BRTD4JD", "TIiajkdnlazkcOXrIdevi7FQ")
DISCORD = ("4174216298", "JHMHI8qBe7bk2ZwO5U711o3dV_js")
TOKEN = "3ccdd113474722377935511fc85d3dd4"


class Receiver(BaseHTTPRequestHandler):
    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        self.server.received.append(
            {
                "path": self.path,
                "type": self.headers.get("Content-Type", ""),
                "body": json.loads(body) if body else None,
            }
        )
        status = self.server.statuses.pop(0) if self.server.statuses else 200
        answer = b"ok" if self.path.startswith("/slack/") else b"{}"  # as Slack answers
        self.send_response(status)
        self.send_header("Content-Length", str(len(answer)))
        self.end_headers()
        self.wfile.write(answer)

    def log_message(self, *args):
        pass


@pytest.fixture
def receiver():
    server = ThreadingHTTPServer(("127.0.0.1", 0), Receiver)
    server.received, server.statuses = [], []
    server.base = f"127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


@pytest.fixture
def alerts_to(settings):
    """Configure alert URLs (and nothing else that tells staff)."""
    settings.ADMINS = []
    settings.ALERT_WEBHOOK_URL = ""
    settings.ALERT_DEDUPE_SECONDS = 900
    settings.ALERT_WEBHOOK_MAX_ATTEMPTS = 3
    settings.PUBLIC_BASE_URL = "https://confirma.example.com"

    def configure(*urls: str):
        settings.ALERT_URLS = list(urls)

    return configure


def queued():
    return [
        result.args_kwargs["kwargs"]
        for result in DBTaskResult.objects.filter(task_path=TASK).order_by("enqueued_at", "pk")
    ]


def deliver_queued(done: int = 0) -> list[str]:
    """Run the queued delivery tasks from the `done`-th on, in order, as the worker would."""
    return [alert_webhook_send.call(**kwargs) for kwargs in queued()[done:]]


@pytest.fixture
def raise_alert(django_capture_on_commit_callbacks):
    """Raise an alert in a transaction that commits (its after-commit work runs)."""

    def raise_it(code="printer.down", message="Printer offline", context=None):
        with django_capture_on_commit_callbacks(execute=True):
            return alert_raise(
                code=code, message=message, context={"printer": 3} if context is None else context
            )

    return raise_it


def test_generic_json_gets_apprise_json_with_the_alert(alerts_to, receiver, raise_alert):
    alerts_to(f"json://{receiver.base}/alerts/in")
    alert = raise_alert()

    assert deliver_queued() == ["sent"]
    [post] = receiver.received
    assert post["path"] == "/alerts/in"
    assert post["type"] == "application/json"
    body = post["body"]
    assert body["type"] == "warning"
    assert body["title"] == "printer.down: Printer offline"
    assert body["message"].startswith("Printer offline\n\ncode: printer.down\n")
    assert f"alert id: {alert.pk}" in body["message"]
    assert (
        f"https://confirma.example.com/admin/notifications/alert/{alert.pk}/change/"
        in body["message"]
    )
    assert '"printer": 3' in body["message"]


def test_slack_gets_an_attachment_through_its_webhook(
    alerts_to, receiver, monkeypatch, raise_alert
):
    monkeypatch.setattr(NotifySlack, "webhook_url", f"http://{receiver.base}/slack")
    alerts_to("slack://{}/{}/{}/#ops".format(*SLACK))
    raise_alert()

    assert deliver_queued() == ["sent"]
    [post] = receiver.received
    assert post["path"] == "/slack/{}/{}/{}".format(*SLACK)
    body = post["body"]
    assert body["channel"] == "#ops"
    [attachment] = body["attachments"]
    assert attachment["title"] == "printer.down: Printer offline"
    assert "code: printer.down" in attachment["text"]


def test_discord_gets_an_embed_through_its_webhook(alerts_to, receiver, monkeypatch, raise_alert):
    monkeypatch.setattr(NotifyDiscord, "notify_url", f"http://{receiver.base}/discord")
    alerts_to("discord://{}/{}".format(*DISCORD))
    raise_alert()

    assert deliver_queued() == ["sent"]
    [post] = receiver.received
    assert post["path"].startswith("/discord/{}/{}".format(*DISCORD))
    content = post["body"]["content"]
    assert content.startswith("printer.down: Printer offline")
    assert "code: printer.down" in content


def test_a_chat_server_of_our_own_gets_its_format_with_no_redirection(
    alerts_to, receiver, raise_alert
):
    alerts_to(f"mmost://{receiver.base}/{TOKEN}")
    raise_alert()

    assert deliver_queued() == ["sent"]
    [post] = receiver.received
    assert post["path"] == f"/hooks/{TOKEN}"
    assert "Printer offline" in post["body"]["text"]


def test_each_url_is_retried_alone_and_repeats_in_the_window_only_count(
    alerts_to, receiver, caplog, raise_alert
):
    caplog.set_level(logging.DEBUG)
    first, second = f"json://{receiver.base}/one", f"json://{receiver.base}/two/{TOKEN}"
    alerts_to(first, second)
    receiver.statuses = [200, 500]  # the first attempt to `one` succeeds, to `two` fails

    raise_alert()
    raise_alert()  # within ALERT_DEDUPE_SECONDS: counted, nobody told again
    assert Alert.objects.get().count == 2
    tasks = queued()
    assert [(t["target"], t["attempt"]) for t in tasks] == [
        (alert_target_key(first), 1),
        (alert_target_key(second), 1),
    ]
    assert TOKEN not in json.dumps(tasks)

    assert deliver_queued() == ["sent", "retrying"]
    retry = queued()[2]
    assert retry == {**tasks[1], "attempt": 2}
    assert deliver_queued(2) == ["sent"]
    paths = [post["path"] for post in receiver.received]
    assert paths == ["/one", f"/two/{TOKEN}", f"/two/{TOKEN}"]
    assert "JSON 127.0.0.1" in caplog.text and "HTTP 500" in caplog.text
    assert TOKEN not in caplog.text


def test_a_url_that_keeps_failing_is_given_up_and_unreachable_ones_are_retried(
    alerts_to, receiver, caplog, raise_alert
):
    caplog.set_level(logging.DEBUG)
    alerts_to(f"json://{receiver.base}/{TOKEN}", f"json://127.0.0.1:9/{TOKEN}")
    receiver.statuses = [503, 503, 503]
    raise_alert()

    assert deliver_queued() == ["retrying", "retrying"]
    assert deliver_queued(2) == ["retrying", "retrying"]
    assert deliver_queued(4) == ["gave_up", "gave_up"]
    assert len(queued()) == 6 and len(receiver.received) == 3
    assert "connection error" in caplog.text and "gave up after 3 attempts" in caplog.text
    assert TOKEN not in caplog.text


def test_a_url_no_service_takes_is_given_up_at_once(alerts_to, caplog, raise_alert):
    alerts_to(f"slack://{TOKEN}")  # a Slack URL needs three tokens
    raise_alert()
    assert deliver_queued() == ["gave_up"]
    assert len(queued()) == 1
    assert "no notification service takes this URL" in caplog.text
    assert TOKEN not in caplog.text


def test_slack_and_discord_failures_log_no_token(
    alerts_to, receiver, monkeypatch, caplog, raise_alert
):
    caplog.set_level(logging.DEBUG)
    monkeypatch.setattr(NotifySlack, "webhook_url", f"http://{receiver.base}/slack")
    monkeypatch.setattr(NotifyDiscord, "notify_url", "http://127.0.0.1:9/discord")
    alerts_to("slack://{}/{}/{}".format(*SLACK), "discord://{}/{}".format(*DISCORD))
    receiver.statuses = [404]
    raise_alert()

    assert deliver_queued() == ["retrying", "retrying"]
    assert "Slack failed (HTTP 404)" in caplog.text
    assert "Discord failed (connection error)" in caplog.text
    for secret in (*SLACK, *DISCORD):
        assert secret not in caplog.text


def test_no_url_no_task_and_a_url_removed_later_is_skipped(alerts_to, receiver, raise_alert):
    alerts_to()
    raise_alert()
    assert queued() == []

    alerts_to(f"json://{receiver.base}/old")
    raise_alert(code="disk.full", message="Disk full", context={})
    alerts_to(f"json://{receiver.base}/new")
    assert deliver_queued() == ["skipped"]
    assert receiver.received == []


def test_the_deprecated_webhook_url_is_one_more_url_of_the_list(
    alerts_to, settings, receiver, raise_alert
):
    alerts_to(f"json://{receiver.base}/apprise", f"confirma://{receiver.base}/hook")
    # The same address as the list's confirma:// URL: still sent to once.
    settings.ALERT_WEBHOOK_URL = f"http://{receiver.base}/hook"
    alert = raise_alert()

    assert len(queued()) == 2
    assert deliver_queued() == ["sent", "sent"]
    apprise_post, confirma_post = receiver.received
    assert apprise_post["body"]["title"] == "printer.down: Printer offline"
    assert confirma_post["path"] == "/hook"
    assert confirma_post["body"] == {
        "code": "printer.down",
        "message": "Printer offline",
        "context": {"printer": 3},
        "raised_at": queued()[1]["raised_at"],
        "count": alert.count,
    }


def test_a_task_queued_before_urls_had_keys_goes_to_every_url(alerts_to, receiver, raise_alert):
    alerts_to(f"json://{receiver.base}/a", f"json://{receiver.base}/b")
    alert = raise_alert()
    assert alert_webhook_send.call(alert_id=alert.pk, raised_at="2026-01-01T00:00:00") == (
        "sent,sent"
    )
    assert sorted(post["path"] for post in receiver.received) == ["/a", "/b"]


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("https://hooks.example.com/x", "confirmas://hooks.example.com/x"),
        ("http://10.0.0.5:8080/x?token=1", "confirma://10.0.0.5:8080/x?token=1"),
        ("HTTPS://hooks.example.com/x", "confirmas://hooks.example.com/x"),
        ("ftp://files.example.com/x", "ftp://files.example.com/x"),
    ],
)
def test_webhook_urls_map_to_confirma_schemes(url, expected):
    assert confirma_url_from_webhook(url) == expected


# --- Secrets in logs and checks -------------------------------------------------------------


def test_redaction_masks_alert_urls_and_the_tokens_services_quote(settings):
    settings.ALERT_URLS = [
        "slack://{}/{}/{}/#ops".format(*SLACK),
        "discord://{}/{}".format(*DISCORD),
        f"mailtos://alerts:hunter2x@smtp.example.com?to=ops@example.com&pass={TOKEN}",
    ]
    settings.ALERT_WEBHOOK_URL = f"https://hooks.example.com/services/{TOKEN}9"
    text = redact(
        "POST https://hooks.slack.com/services/{}/{}/{} failed; ".format(*SLACK)
        + "Discord https://discord.com/api/webhooks/{}/{}; ".format(*DISCORD)
        + f"smtp login hunter2x; {settings.ALERT_WEBHOOK_URL}; "
        + "alerts_prune ran on smtp.example.com for services"
    )
    for secret in (*SLACK, *DISCORD, "hunter2x", TOKEN):
        assert secret not in text
    # Words and host names of the URLs are not secrets: log lines keep them.
    assert "alerts_prune ran on smtp.example.com for services" in text


def check_ids():
    return [(message.id, message.msg) for message in run_checks(tags=["notifications"])]


def test_checks_report_unusable_alert_urls_without_their_tokens(alerts_to, settings):
    alerts_to(
        "slack://{}/{}/{}".format(*SLACK),
        f"jsons://hooks.example.com/{TOKEN}",
        f"confirmas://hooks.example.com/{TOKEN}",
        "workflows://prod-01.westeurope.logic.azure.com:443/abcdef0123456789/"
        "signature0123456789abcdef",
    )
    assert check_ids() == []

    alerts_to(f"slack://{TOKEN}", f"hooks.slack.com/services/{TOKEN}", "confirmas:///x")
    settings.ALERT_WEBHOOK_URL = f"ftp://hooks.example.com/{TOKEN}"
    found = check_ids()
    assert [id_ for id_, _ in found] == ["notifications.E001"] * 4 + ["notifications.W001"]
    assert found[0][1].startswith("Alert URL 1 (slack) cannot be sent to")
    assert "(ftp hooks.example.com)" in found[3][1]
    assert all(TOKEN not in message for _, message in found)


def test_alert_urls_are_read_from_the_environment_separated_by_spaces_or_commas():
    urls = (
        "slack://a/b/c, discord://1/2 mailtos://u:p@x.example?to=a@x.example,b@x.example;"
        "json://127.0.0.1:8080/p ,"
    )
    out = subprocess.run(
        [
            sys.executable,
            "-c",
            "import json; from config import settings; print(json.dumps(settings.ALERT_URLS))",
        ],
        cwd=ROOT,
        env={
            "PATH": "/usr/bin:/bin",
            "DJANGO_SETTINGS_MODULE": "config.settings",
            "CONFIRMA_TESTING": "true",
            "ALERT_URLS": urls,
        },
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    assert json.loads(out.stdout) == [
        "slack://a/b/c",
        "discord://1/2",
        "mailtos://u:p@x.example?to=a@x.example,b@x.example",
        "json://127.0.0.1:8080/p",
    ]


# --- Trying the URLs ------------------------------------------------------------------------


def test_send_test_alert_tries_every_url_now_and_records_nothing(alerts_to, receiver):
    alerts_to(f"json://{receiver.base}/{TOKEN}", f"jsons://127.0.0.1:9/{TOKEN}")
    out = io.StringIO()
    with pytest.raises(CommandError, match="1 of 2 alert URLs did not get the message"):
        call_command("send_test_alert", stdout=out)
    assert out.getvalue().splitlines() == [
        f"JSON {receiver.base}: sent",
        "JSON 127.0.0.1:9: failed (connection error)",
    ]
    [post] = receiver.received
    assert post["body"]["title"].startswith("alerts.test: A test message from Confirma")
    assert "alert id" not in post["body"]["message"]
    assert not Alert.objects.exists() and queued() == []

    alerts_to()
    with pytest.raises(CommandError, match="No alert URL is configured"):
        call_command("send_test_alert")
