"""Scheduled runs are quiet: run_periodic (or `-v 0`, for cron) prints nothing, and a job
logs what it did through the logging configuration, under its name, only when something
happened."""

import copy
import io
import json
import logging
import logging.config
from datetime import timedelta

import pytest
from django.conf import settings as django_settings
from django.core.management import CommandError, call_command
from django.utils import timezone

from config.models import PeriodicJob
from config.services import periodic_job_name
from payments.models import PaymentSession
from tests.operations.test_expiry import insert_sessions

pytestmark = [pytest.mark.postgres, pytest.mark.django_db]

JOBS = [
    {"command": "expire_payment_sessions", "every": 60},
    {"command": "expire_subscriptions", "every": 60},
    {"command": "complete_machine_sessions", "every": 5},
    {"command": "recover_print_jobs", "every": 15},
    {"command": "prune", "every": 3600},
]


def run_periodic(settings) -> tuple[str, str]:
    """One `run_periodic --once` with every job due; what it printed (stdout, stderr)."""
    PeriodicJob.objects.update(next_due_at=timezone.now() - timedelta(seconds=1))
    out, err = io.StringIO(), io.StringIO()
    call_command("run_periodic", "--once", stdout=out, stderr=err)
    return out.getvalue(), err.getvalue()


def jobs_records(caplog) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.name == "confirma.jobs"]


def test_nothing_to_do_prints_and_logs_nothing(settings, caplog):
    """Every periodic job as shipped, three rounds: not one line printed or logged."""
    caplog.set_level(logging.DEBUG, logger="confirma.jobs")
    for _ in range(3):
        assert run_periodic(settings) == ("", "")
    assert [r for r in jobs_records(caplog) if r.levelno >= logging.INFO] == []
    names = {periodic_job_name(job) for job in django_settings.PERIODIC_JOBS}
    assert dict(PeriodicJob.objects.values_list("name", "last_status")) == dict.fromkeys(
        names, "ok"
    )
    assert PeriodicJob.objects.filter(runs=3).count() == len(names)


def test_what_a_command_prints_anyway_is_logged_at_debug(caplog):
    caplog.set_level(logging.DEBUG, logger="confirma.jobs")
    out = io.StringIO()
    call_command("retry_webhooks", "-v", "0", stdout=out)
    assert out.getvalue() == ""
    (record,) = jobs_records(caplog)
    assert (record.levelno, record.job) == (logging.DEBUG, "retry_webhooks")
    assert record.getMessage().startswith("retry_webhooks: retried 0 webhook deliveries")


def test_what_a_job_did_is_logged_once_under_its_name(settings, caplog):
    settings.PERIODIC_JOBS = JOBS
    caplog.set_level(logging.INFO, logger="confirma.jobs")
    insert_sessions(3, expires_at=timezone.now() - timedelta(minutes=1))

    assert run_periodic(settings) == ("", "")

    (record,) = jobs_records(caplog)
    assert record.levelno == logging.INFO
    assert record.job == "expire_payment_sessions"
    assert record.counts == {"expired": 3, "batches": 1}
    assert record.getMessage() == (
        "expire_payment_sessions: expired 3 payment sessions in 1 batches"
    )
    assert PaymentSession.objects.filter(status="expired").count() == 3


def test_the_log_line_is_json_in_production(settings):
    """Through settings.LOGGING as production configures it (LOG_FORMAT=json)."""
    config = copy.deepcopy(django_settings.LOGGING)
    stream = io.StringIO()
    config["handlers"]["console"]["formatter"] = "json"
    config["handlers"]["console"]["stream"] = stream
    settings.PERIODIC_JOBS = JOBS[:1]
    insert_sessions(2, expires_at=timezone.now() - timedelta(minutes=1))
    logging.config.dictConfig(config)
    try:
        assert run_periodic(settings) == ("", "")
    finally:
        logging.config.dictConfig(django_settings.LOGGING)
    lines = [json.loads(line) for line in stream.getvalue().splitlines()]
    job_lines = [line for line in lines if line.get("logger") == "confirma.jobs"]
    assert len(job_lines) == 1, lines
    assert job_lines[0]["job"] == "expire_payment_sessions"
    assert job_lines[0]["level"] == "INFO"
    assert job_lines[0]["counts"] == {"expired": 2, "batches": 1}
    # What the service logged meanwhile carries the job's name too.
    service = [line for line in lines if line.get("logger") == "payments.services.expiry"]
    assert service and {line["job"] for line in service} == {"expire_payment_sessions"}
    # Outside a job, records have no job.
    record = logging.getLogRecordFactory()("x", logging.INFO, __file__, 1, "after", None, None)
    assert not hasattr(record, "job")


def test_a_job_that_cannot_run_is_a_warning_with_its_name(settings, caplog):
    settings.PERIODIC_JOBS = [{"command": "replay_webhooks", "args": ["--id", "9"], "every": 60}]
    caplog.set_level(logging.INFO, logger="confirma.jobs")
    out, err = io.StringIO(), io.StringIO()
    with pytest.raises(CommandError) as failed:
        call_command("run_periodic", "--once", stdout=out, stderr=err)
    assert failed.value.returncode == 1
    assert (out.getvalue(), err.getvalue()) == ("", "")
    (record,) = jobs_records(caplog)
    assert record.levelno == logging.WARNING
    assert record.job == "replay_webhooks --id 9"
    assert "could not run: No such deliveries: [9]" in record.getMessage()
    assert PeriodicJob.objects.get(name="replay_webhooks --id 9").last_status == "failed"


def test_cron_quiet_mode_prints_nothing_and_logs_only_what_happened(caplog):
    caplog.set_level(logging.INFO, logger="confirma.jobs")
    out = io.StringIO()
    call_command("expire_payment_sessions", "-v", "0", stdout=out)
    assert out.getvalue() == "" and jobs_records(caplog) == []

    insert_sessions(1, expires_at=timezone.now() - timedelta(minutes=1))
    call_command("expire_payment_sessions", "-v", "0", stdout=out)
    assert out.getvalue() == ""
    (record,) = jobs_records(caplog)
    assert record.job == "expire_payment_sessions" and record.counts["expired"] == 1


def test_a_person_still_sees_the_summary():
    out = io.StringIO()
    call_command("expire_subscriptions", stdout=out)
    call_command("complete_machine_sessions", stdout=out)
    assert out.getvalue().splitlines() == [
        "0 subscription(s) expired",
        "completed 0, expired 0 machine sessions",
    ]
