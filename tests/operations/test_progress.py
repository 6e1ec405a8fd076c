"""Long commands show their progress on a terminal, and only there; `-v 2` adds a line
per batch."""

import io
import os
import pty
from datetime import timedelta

import pytest
from django.core.management import call_command
from django.utils import timezone

from notifications.models import Event
from tests.factories import EventFactory
from tests.operations.test_expiry import insert_sessions

pytestmark = [pytest.mark.postgres, pytest.mark.django_db]


def on_a_terminal(*argv) -> str:
    """Run a command with stdout on a real pseudo-terminal; what the terminal received."""
    leader, follower = pty.openpty()
    os.set_blocking(leader, False)
    with open(follower, "w", closefd=True) as terminal:
        call_command(*argv, stdout=terminal)
    received = b""
    while True:
        try:
            chunk = os.read(leader, 65536)
        except (BlockingIOError, OSError):
            break
        if not chunk:
            break
        received += chunk
    os.close(leader)
    return received.decode().replace("\r\n", "\n")


def due_sessions(count: int) -> None:
    insert_sessions(count, expires_at=timezone.now() - timedelta(minutes=1))


def old_events(count: int) -> None:
    for _ in range(count):
        EventFactory(created_at=timezone.now() - timedelta(days=40))


def test_expiry_shows_its_progress_on_a_terminal():
    due_sessions(5)
    shown = on_a_terminal("expire_payment_sessions", "--batch-size", "2")
    assert "\rexpired payment sessions: 5, " in shown  # the last count, drawn in place
    assert shown.endswith("expired 5 payment sessions in 3 batches\n")
    # The progress line is erased before the summary: the summary starts a clean line.
    assert "\r" + " " * 10 in shown


def test_no_progress_when_stdout_is_not_a_terminal():
    due_sessions(5)
    out = io.StringIO()
    call_command("expire_payment_sessions", "--batch-size", "2", stdout=out)
    assert out.getvalue() == "expired 5 payment sessions in 3 batches\n"


def test_verbosity_2_prints_a_line_per_batch():
    due_sessions(5)
    out = io.StringIO()
    call_command("expire_payment_sessions", "--batch-size", "2", "-v", "2", stdout=out)
    assert out.getvalue().splitlines() == [
        "batch 1: expired 2 (total 2)",
        "batch 2: expired 2 (total 4)",
        "batch 3: expired 1 (total 5)",
        "expired 5 payment sessions in 3 batches",
    ]


def test_prune_events_counts_down_to_the_total_on_a_terminal():
    old_events(3)
    shown = on_a_terminal("prune_events", "--older-than", "30d", "--batch-size", "2")
    assert "\rpruned events: 3/3 (100 %), " in shown
    assert shown.endswith("pruned 3 events older than 30d\n")
    assert not Event.objects.exists()


def test_prune_shows_each_kind_and_its_deletes_at_verbosity_2():
    old_events(3)
    keep = EventFactory()
    out = io.StringIO()
    call_command("prune", "--batch-size", "2", "-v", "2", stdout=out)
    assert out.getvalue().splitlines() == [
        "events: deleted 2 (total 2)",
        "events: deleted 1 (total 3)",
        "pruned 3 events, 0 webhook deliveries and 0 resolved alerts",
    ]
    assert list(Event.objects.values_list("pk", flat=True)) == [keep.pk]
    shown = on_a_terminal("prune")
    assert "\r" not in shown  # nothing to delete: no progress drawn
    assert shown == "pruned 0 events, 0 webhook deliveries and 0 resolved alerts\n"
