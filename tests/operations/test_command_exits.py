"""Exit statuses, the same for every command: 0 fine, 1 problems found, 2 bad usage or
something it needs unreachable (the database, Redis)."""

import io
import json
import os
import subprocess
import sys
from datetime import timedelta
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command
from django.utils import timezone

from notifications.models import Event
from payments.models import PaymentSession
from tests.operations.test_expiry import insert_sessions

ROOT = Path(__file__).resolve().parents[2]


def status(*argv, **options) -> int:
    """The exit status `manage.py <argv>` would have, run in this process."""
    try:
        call_command(*argv, stdout=io.StringIO(), stderr=io.StringIO(), **options)
    except CommandError as exc:
        return exc.returncode
    except SystemExit as exc:
        return exc.code
    return 0


BAD_USAGE = [
    ("compile_translations", "--bogus"),
    ("complete_machine_sessions", "--bogus"),
    ("db_worker", "--queue-name", "default", "--exclude-queues", "x"),
    ("demo_data",),  # DEBUG off, no --force
    ("expire_payment_sessions", "--batch-size", "0"),
    ("expire_subscriptions", "--bogus"),
    ("fake_billing",),  # FAKE_PROVIDERS off
    ("fake_mercadopago",),
    ("monitor_payments", "check", "--limit", "0"),
    ("monitor_payments", "user", "nobody-by-that-name"),
    ("monitor_payments", "check", "--bogus"),
    ("notify", "--audience", "role:cashier", "--type", "x", "--data", "{nope"),
    ("notify", "--audience", "role:nobody", "--type", "x"),
    ("poll_providers", "--limit", "0"),
    ("process_webhooks", "--batch", "0"),
    ("prune", "--batch-size", "0"),
    ("prune_events", "--older-than", "forever"),
    ("prune_events",),  # --older-than is required
    ("recover_print_jobs", "--older-than", "0"),
    ("replay_webhooks",),  # which deliveries?
    ("replay_webhooks", "--id", "424242"),
    ("retry_webhooks", "--limit", "0"),
    ("run_periodic", "--tick", "0"),
]


@pytest.mark.django_db
@pytest.mark.parametrize("argv", BAD_USAGE, ids=" ".join)
def test_bad_usage_exits_2_and_changes_nothing(argv, settings):
    settings.DEBUG = False
    settings.FAKE_PROVIDERS = False
    assert status(*argv) == 2
    assert not Event.objects.exists()


def test_a_catalogue_that_cannot_be_read_exits_2(settings, tmp_path):
    broken = tmp_path / "xx" / "LC_MESSAGES"
    broken.mkdir(parents=True)
    (broken / "django.po").write_text('msgid "a"\nmsgstr "b"\nthis is not a catalogue\n')
    settings.LOCALE_PATHS = [tmp_path]
    assert status("compile_translations") == 2


@pytest.mark.django_db
def test_a_periodic_job_that_found_problems_makes_run_periodic_once_exit_1(settings):
    settings.PERIODIC_JOBS = [
        {"command": "expire_subscriptions", "every": 60},
        {"command": "replay_webhooks", "args": ["--id", "424242"], "every": 60},
    ]
    assert status("run_periodic", "--once") == 1
    assert status("run_periodic", "--once") == 0  # not due again: nothing ran


# Every command that needs the database, as cron or a person would type it.
NEEDS_THE_DATABASE = [
    ["complete_machine_sessions"],
    ["db_worker", "--batch", "--no-startup-delay"],
    ["demo_data", "--force"],
    ["expire_payment_sessions"],
    ["expire_subscriptions"],
    ["monitor_payments", "check"],
    ["monitor_payments", "user", "someone"],
    ["notify", "--audience", "role:cashier", "--type", "staff.notice"],
    ["poll_providers"],
    ["process_webhooks", "--once"],
    ["prune"],
    ["prune_events", "--older-than", "30d"],
    ["recover_print_jobs"],
    ["replay_webhooks", "--failed"],
    ["retry_webhooks"],
    ["run_periodic", "--once"],
]

# Runs each command through Django's command-line entry point, in one process (one
# start-up for all of them), and prints their exit statuses as JSON.
DRIVER = """
import json, sys
import django
django.setup()
from django.core.management import ManagementUtility
codes = {}
for argv in json.loads(sys.argv[1]):
    try:
        ManagementUtility(["manage.py", *argv]).execute()
        code = 0
    except SystemExit as exc:
        code = exc.code
    except BaseException as exc:
        code = "uncaught " + exc.__class__.__name__
    codes[" ".join(argv)] = code
print("CODES=" + json.dumps(codes))
"""


def unreachable_database_env() -> dict[str, str]:
    """The environment cron gives a command (production profile, DEBUG off), with a database
    nobody answers for."""
    env = {k: v for k, v in os.environ.items() if k in ("PATH", "HOME", "LANG")}
    env["DATABASE_URL"] = "postgres://nobody@127.0.0.1:1/nothing"
    env["SECRET_KEY"] = "cron-" + "k" * 50
    env["DJANGO_SETTINGS_MODULE"] = "config.settings"
    return env


def test_every_command_exits_2_when_the_database_is_unreachable():
    argvs = [*NEEDS_THE_DATABASE, ["expire_subscriptions", "--bogus"]]
    done = subprocess.run(
        [sys.executable, "-c", DRIVER, json.dumps(argvs)],
        cwd=ROOT,
        env=unreachable_database_env(),
        capture_output=True,
        text=True,
        timeout=120,
    )
    line = next(x for x in done.stdout.splitlines() if x.startswith("CODES="))
    codes = json.loads(line.removeprefix("CODES="))
    assert codes == {" ".join(argv): 2 for argv in argvs}, done.stderr[-3000:]
    assert "Traceback" not in done.stderr
    assert done.stderr.count("OperationalError") >= len(NEEDS_THE_DATABASE)


@pytest.mark.parametrize(
    "command, says",
    [
        (
            "expire_payment_sessions",
            "expire_payment_sessions could not run: the database is unreachable",
        ),
        ("prune", "prune could not run: the database is unreachable"),
        ("retry_webhooks", "Could not retry webhook deliveries: OperationalError"),
    ],
)
def test_a_periodic_job_run_by_manage_py_exits_2_and_says_the_database_is_unreachable(
    command, says
):
    done = subprocess.run(
        [sys.executable, "manage.py", command],
        cwd=ROOT,
        env=unreachable_database_env(),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 2, done.stdout + done.stderr
    assert says in done.stderr
    assert "OperationalError" in done.stderr


@pytest.fixture
def redis_down(settings):
    """The shipped Redis channel layer, pointed at a port where nothing listens."""
    from channels.layers import channel_layers

    settings.CHANNEL_LAYERS = {
        "default": {
            "BACKEND": "channels_redis.pubsub.RedisPubSubChannelLayer",
            "CONFIG": {
                "hosts": [{"address": "redis://127.0.0.1:1/0", "socket_connect_timeout": 1}],
                "prefix": "confirma-down",
            },
        }
    }
    channel_layers.backends = {}
    yield
    channel_layers.backends = {}


@pytest.mark.django_db
def test_notify_with_redis_unreachable_still_logs_the_event_for_screens_to_catch_up(
    redis_down, django_capture_on_commit_callbacks
):
    # The event log is the record; the live push is best effort (screens resume from it).
    with django_capture_on_commit_callbacks(execute=True):
        assert status("notify", "--audience", "role:cashier", "--type", "staff.notice") == 0
    assert list(Event.objects.values_list("audience", "type")) == [("role:cashier", "staff.notice")]


@pytest.mark.postgres
@pytest.mark.django_db
def test_jobs_that_only_push_best_effort_still_exit_0_when_redis_is_unreachable(
    redis_down, django_capture_on_commit_callbacks
):
    insert_sessions(2, expires_at=timezone.now() - timedelta(minutes=1))
    with django_capture_on_commit_callbacks(execute=True):
        assert status("expire_payment_sessions") == 0
    assert set(PaymentSession.objects.values_list("status", flat=True)) == {"expired"}
