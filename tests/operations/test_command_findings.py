"""Exit status 1, problems found: the run worked and found something for staff."""

from datetime import timedelta

import pytest
from django.test import Client
from django.utils import timezone

from notifications.models import Alert
from tests.factories import PrinterFactory
from tests.operations.test_command_exits import status
from tests.tickets.conftest import *  # noqa: F403 - kiosk, service and provider fixtures
from tests.tickets.conftest import kiosk_session, pay_at_kiosk
from tickets.models import PrintJob, PrintJobStatus


@pytest.mark.django_db
def test_recover_print_jobs_exits_1_when_a_job_had_used_its_last_attempt(
    kiosk_secret, service, settings
):
    PrinterFactory(name="Balcão")
    paid = pay_at_kiosk(Client(), kiosk_secret, kiosk_session(service))
    assert paid.json()["status"] == "processed"
    job = PrintJob.objects.get()
    # A worker died while sending the last attempt, an hour ago.
    PrintJob.objects.filter(pk=job.pk).update(
        status=PrintJobStatus.SENDING,
        attempts=settings.PRINT_MAX_ATTEMPTS,
        sent_at=timezone.now() - timedelta(hours=1),
    )

    assert status("recover_print_jobs") == 1
    job.refresh_from_db()
    assert job.status == PrintJobStatus.FAILED
    assert Alert.objects.filter(code="ticket.print_error").count() == 1
    assert status("recover_print_jobs") == 0  # dealt with: nothing found the next time
