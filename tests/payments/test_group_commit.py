"""Group commit at the intake: deliveries that arrive together are stored in one INSERT
and one COMMIT, each request answered once its own row is committed; a repeat is answered
as a duplicate, inside a group or against what is stored; a row the database refuses
fails only itself; a request whose row is not committed in time answers 503, and its
retry finds it stored."""

import threading
import time

import psycopg
import pytest
from django.db import DatabaseError, connection
from django.test import Client

from payments.models import WebhookDelivery
from payments.services.deliveries import deliveries_drain
from payments.services.group_commit import intake_writer
from tests.payments.test_deliveries import _session
from tests.tickets.test_webhook_cost import _post as post_unprocessed

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]

TABLE = WebhookDelivery._meta.db_table


@pytest.fixture(autouse=True)
def _patient_requests(settings):
    """Requests here wait longer than any gathering below, so a slow machine shows up as a
    slow test, not as a request that gave up."""
    settings.WEBHOOK_GROUP_COMMIT_WAIT_SECONDS = 30


def _post(secret, session, *, msg_id=None):
    # A client of its own per call: the requests come from several threads at once.
    return post_unprocessed(Client(), secret, session, msg_id=msg_id)


def _connect(*, autocommit: bool = False) -> psycopg.Connection:
    s = connection.settings_dict
    return psycopg.connect(
        dbname=s["NAME"], user=s["USER"], host=s["HOST"], port=s["PORT"] or 5432,
        password=s["PASSWORD"] or None, autocommit=autocommit,
    )  # fmt: skip


class _TableHeld:
    """Another session holds the deliveries table against INSERTs, the way a slow disk or
    a long COMMIT would hold the writer, while requests gather behind it."""

    def __enter__(self):
        self.conn = _connect()
        self.conn.execute(f'LOCK TABLE "{TABLE}" IN SHARE MODE')
        return self

    def writer_blocked(self, max_seconds: float = 10) -> bool:
        """The intake's INSERT waits on this lock."""
        # (autocommit: a transaction would see one snapshot of the activity throughout)
        with _connect(autocommit=True) as watcher:
            deadline = time.monotonic() + max_seconds
            while time.monotonic() < deadline:
                waiting = watcher.execute(
                    # (this test's database only: a parallel run's other databases have
                    # INSERTs of their own)
                    "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' "
                    "AND datname = current_database() AND query LIKE %s",
                    [f'INSERT INTO "{TABLE}"%'],
                ).fetchone()[0]
                if waiting:
                    return True
                time.sleep(0.02)
        return False

    def __exit__(self, *exc):
        self.conn.rollback()
        self.conn.close()


def _gathered(count: int, max_seconds: float = 10) -> None:
    """Wait until `count` requests wait for the next group (at most `max_seconds`)."""
    deadline = time.monotonic() + max_seconds
    while time.monotonic() < deadline and len(intake_writer._queue) < count:
        time.sleep(0.01)


def _in_threads(calls) -> list:
    answers = [None] * len(calls)

    def run(index, call):
        answers[index] = call()

    threads = [threading.Thread(target=run, args=(i, c)) for i, c in enumerate(calls)]
    for thread in threads:
        thread.start()
    return threads, answers


def _xmins(pks) -> list[str]:
    with connection.cursor() as cursor:
        sql = f'SELECT xmin::text FROM "{TABLE}" WHERE id = ANY(%s)'  # noqa: S608 (our table)
        cursor.execute(sql, [list(pks)])
        return [row[0] for row in cursor.fetchall()]


def test_deliveries_arriving_together_are_committed_together(kiosk_secret, test_purpose):
    first, *others = [_session(f"group-{n}") for n in range(11)]
    with _TableHeld() as held:
        lead, lead_answer = _in_threads([lambda: _post(kiosk_secret, first)])
        assert held.writer_blocked()
        threads, answers = _in_threads([lambda s=s: _post(kiosk_secret, s) for s in others])
        _gathered(len(others))
        # Nothing is answered before its row is committed.
        time.sleep(0.2)
        assert lead_answer == [None] and answers == [None] * len(others)
    for thread in [*lead, *threads]:
        thread.join(15)

    bodies = [answer.json() for answer in [*lead_answer, *answers]]
    assert [answer.status_code for answer in [*lead_answer, *answers]] == [200] * 11
    assert {body["status"] for body in bodies} == {"accepted"}
    pks = [body["delivery"] for body in bodies]
    assert len(set(pks)) == 11
    stored = WebhookDelivery.objects.filter(pk__in=pks)
    assert sorted(stored.values_list("event_id", flat=True)) == sorted(
        f"msg_{s.reference}" for s in [first, *others]
    )
    # The first alone; the ten that gathered behind it in one transaction.
    xmins = _xmins(pks)
    assert len(set(xmins)) == 2 and max(xmins.count(x) for x in xmins) == 10
    # Each delivery is the one its answer named, and the workers confirm every one.
    assert {d.event_id: d.pk for d in stored} == {
        f"msg_{s.reference}": body["delivery"]
        for s, body in zip([first, *others], bodies, strict=True)
    }
    assert deliveries_drain().outcomes == {"processed": 11}


def test_a_repeat_is_a_duplicate_in_its_group_and_after(kiosk_secret, test_purpose):
    blocker, one, other = (_session(f"dup-{n}") for n in range(3))
    with _TableHeld() as held:
        lead, _ = _in_threads([lambda: _post(kiosk_secret, blocker)])
        assert held.writer_blocked()
        calls = [
            lambda: _post(kiosk_secret, one),
            lambda: _post(kiosk_secret, one),  # the provider sent it twice at once
            lambda: _post(kiosk_secret, other),
        ]
        threads, answers = _in_threads(calls)
        _gathered(3)
    for thread in [*lead, *threads]:
        thread.join(15)

    bodies = [answer.json() for answer in answers]
    assert sorted(body["status"] for body in bodies[:2]) == ["accepted", "duplicate"]
    assert bodies[0]["delivery"] == bodies[1]["delivery"]  # the duplicate names the stored one
    assert bodies[2]["status"] == "accepted"
    assert WebhookDelivery.objects.filter(event_id=f"msg_{one.reference}").count() == 1
    again = _post(kiosk_secret, one).json()
    assert again == {"status": "duplicate", "delivery": bodies[0]["delivery"]}
    assert deliveries_drain().outcomes == {"processed": 3}


def test_a_row_the_database_refuses_fails_alone(kiosk_secret, test_purpose):
    refused_id = "msg_refused_by_the_database"
    with connection.cursor() as cursor:
        cursor.execute(
            f'ALTER TABLE "{TABLE}" ADD CONSTRAINT test_refuses_one '
            f"CHECK (event_id <> '{refused_id}')"
        )
    try:
        blocker, *sessions = [_session(f"refused-{n}") for n in range(4)]
        with _TableHeld() as held:
            lead, _ = _in_threads([lambda: _post(kiosk_secret, blocker)])
            assert held.writer_blocked()
            threads, answers = _in_threads(
                [
                    lambda: _post(kiosk_secret, sessions[0]),
                    lambda: _post(kiosk_secret, sessions[1], msg_id=refused_id),
                    lambda: _post(kiosk_secret, sessions[2]),
                ]
            )
            _gathered(3)
        for thread in [*lead, *threads]:
            thread.join(15)
    finally:
        with connection.cursor() as cursor:
            cursor.execute(f'ALTER TABLE "{TABLE}" DROP CONSTRAINT test_refuses_one')

    assert [answer.status_code for answer in answers] == [200, 503, 200]
    assert answers[1].json() == {"error": "temporarily unavailable, retry later"}
    assert not WebhookDelivery.objects.filter(event_id=refused_id).exists()
    assert deliveries_drain().outcomes == {"processed": 3}  # the blocker and the two others


def test_a_row_not_committed_in_time_answers_503_and_its_retry_finds_it(
    kiosk_secret, test_purpose, settings
):
    settings.WEBHOOK_GROUP_COMMIT_WAIT_SECONDS = 0.3
    session = _session("slow-commit")
    with _TableHeld() as held:
        threads, answers = _in_threads([lambda: _post(kiosk_secret, session)])
        assert held.writer_blocked()
        threads[0].join(5)
        assert answers[0].status_code == 503
    # The row commits once the table is free; the provider's retry is a duplicate of it.
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and not WebhookDelivery.objects.exists():
        time.sleep(0.02)
    (stored,) = WebhookDelivery.objects.all()
    assert _post(kiosk_secret, session).json() == {"status": "duplicate", "delivery": stored.pk}
    assert deliveries_drain().outcomes == {"processed": 1}


def test_without_group_commit_each_request_commits_its_own_row(
    kiosk_secret, test_purpose, settings
):
    settings.WEBHOOK_GROUP_COMMIT = False
    sessions = [_session(f"alone-{n}") for n in range(3)]
    pks = [_post(kiosk_secret, s).json()["delivery"] for s in sessions]
    assert len(set(_xmins(pks))) == 3
    assert intake_writer._thread is None  # never started


def test_a_row_that_gave_up_waiting_before_it_was_taken_is_not_stored(
    kiosk_secret, test_purpose, settings
):
    blocker, late = _session("blocker"), _session("gave-up")
    with _TableHeld() as held:
        lead, _ = _in_threads([lambda: _post(kiosk_secret, blocker)])
        assert held.writer_blocked()
        settings.WEBHOOK_GROUP_COMMIT_WAIT_SECONDS = 0.3
        assert _post(kiosk_secret, late).status_code == 503  # queued behind the blocker
        settings.WEBHOOK_GROUP_COMMIT_WAIT_SECONDS = 30
    lead[0].join(15)
    # Answered 503 and dropped from the queue: the retry is the one that stores it.
    assert not WebhookDelivery.objects.filter(event_id=f"msg_{late.reference}").exists()
    assert _post(kiosk_secret, late).json()["status"] == "accepted"
    assert deliveries_drain().outcomes == {"processed": 2}


def test_too_many_rows_waiting_answer_503_at_once(kiosk_secret, test_purpose, settings):
    settings.WEBHOOK_GROUP_COMMIT_MAX = 1  # the queue holds 10 rows
    blocker, *waiting = [_session(f"full-{n}") for n in range(12)]
    extra = waiting.pop()
    with _TableHeld() as held:
        lead, _ = _in_threads([lambda: _post(kiosk_secret, blocker)])
        assert held.writer_blocked()
        threads, answers = _in_threads([lambda s=s: _post(kiosk_secret, s) for s in waiting])
        _gathered(len(waiting))
        started = time.monotonic()
        refused = _post(kiosk_secret, extra)
        # answered at once, not after the 30 s a request would wait
        assert refused.status_code == 503 and time.monotonic() - started < 10
    for thread in [*lead, *threads]:
        thread.join(15)
    assert [answer.status_code for answer in answers] == [200] * len(waiting)
    assert _post(kiosk_secret, extra).json()["status"] == "accepted"


def test_a_value_the_driver_cannot_send_fails_only_its_own_row(kiosk_secret, test_purpose):
    # A lone surrogate cannot be encoded for PostgreSQL at all (not a database error):
    # the group is written again row by row and only that row fails.
    blocker = _session("encode-blocker")
    deliveries = [
        WebhookDelivery(
            provider="kiosk",
            endpoint="kiosk",
            event_id=f"direct-{n}",
            body=b"{}",
            query_string="bad=\ud800" if n == 1 else "",
            signature_valid=True,
        )
        for n in range(3)
    ]
    with _TableHeld() as held:
        lead, _ = _in_threads([lambda: _post(kiosk_secret, blocker)])
        assert held.writer_blocked()
        outcomes = [None] * 3

        def store(index):
            try:
                outcomes[index] = intake_writer.store(deliveries[index])
            except Exception as exc:
                outcomes[index] = exc

        threads = [threading.Thread(target=store, args=(n,)) for n in range(3)]
        for thread in threads:
            thread.start()
        _gathered(3)
    for thread in [*lead, *threads]:
        thread.join(15)
    assert isinstance(outcomes[0], int) and isinstance(outcomes[2], int)
    assert isinstance(outcomes[1], DatabaseError)
    assert set(WebhookDelivery.objects.values_list("event_id", flat=True)) == {
        f"msg_{blocker.reference}",
        "direct-0",
        "direct-2",
    }
