"""Fault: one of two machines dies in the middle of a burst of payment notifications.

Two complete nodes — `scripts/serve.sh` twice (gunicorn, daphne, webhook workers, a task
worker and the periodic jobs each), on other ports — share one PostgreSQL database and one
Redis, as two machines behind a load balancer would. Kiosk "paid" notifications for
480 ticket sessions are posted from several threads, half to node A and half to node B,
paced over 3 s; 1.5 s in, node A's whole process group is SIGKILLed. Failed sends are NOT
retried (a provider would retry; here nothing that was stored may need it). Node B's
workers must then confirm everything that was stored, deliveries node A's workers had
claimed included once their lease (5 s here) ends:

- every notification either node acknowledged (200 "accepted") was stored, is processed
  once and has its ticket by the time B has drained (a payment left unfulfilled for the
  reconciler to repair minutes later counts as lost);
- no payment gets two tickets, and each service's numbers run 1..n without gaps;
- node A's database sessions end; what its workers had claimed is taken again after the
  lease, and no delivery is left waiting ('received' or 'failed');
- node B never failed a request and is still running at the end.

Counts and timings are printed (run with -s).
"""

import json
import threading
import time
import uuid
from collections import Counter, deque
from http.client import HTTPConnection, HTTPException

import pytest
from django.conf import settings

from payments.providers.kiosk import kiosk_notification
from tests.e2e.stack import KIOSK_SECRET
from tests.faults.harness import wait_until
from tests.faults.nodes import PROXY_HEADERS, Cluster, Node

pytestmark = [pytest.mark.faults, pytest.mark.postgres, pytest.mark.redis]

PAYMENTS = 480  # half posted to each node
SENDERS_PER_NODE = 4
BURST_SECONDS = 3.0  # the notifications are paced evenly over this
KILL_AFTER = 1.5  # seconds into the burst node A dies
LEASE_SECONDS = 5
DRAIN_TIMEOUT = 45.0
START_TIMEOUT = 60.0


@pytest.fixture
def cluster(_services_for_faults, workdir):
    shared = Cluster(workdir)
    try:
        shared.create()
        yield shared
    finally:
        shared.close()


@pytest.fixture
def start_node(cluster):
    started: list[Node] = []

    def _start(name: str, **kwargs) -> Node:
        node = Node(name, cluster, **kwargs)
        started.append(node)
        return node.start()

    yield _start
    errors = []
    for node in started:
        try:
            node.stop()
        except Exception as exc:  # stop the others anyway; report at the end
            errors.append(f"{node.name}: {exc}")
    assert not errors, errors


class Burst:
    """Posts each node's notifications at their due times from a few threads per node,
    each on a keep-alive connection; a failed send is recorded and never retried."""

    def __init__(self, plan: dict[Node, list[dict]], started: float) -> None:
        self.started = started
        self.queues = {node: deque(items) for node, items in plan.items()}
        self.results: list[dict] = []
        self._lock = threading.Lock()
        self.threads = [
            threading.Thread(target=self._send, args=(node,), daemon=True)
            for node in plan
            for _ in range(SENDERS_PER_NODE)
        ]

    def start(self) -> None:
        for thread in self.threads:
            thread.start()

    def join(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        for thread in self.threads:
            thread.join(timeout=max(0.1, deadline - time.monotonic()))
        assert not any(t.is_alive() for t in self.threads), "a sender is still running"

    def _send(self, node: Node) -> None:
        queue, http = self.queues[node], None
        while True:
            try:
                item = queue.popleft()
            except IndexError:
                break
            time.sleep(max(0.0, self.started + item["due"] - time.monotonic()))
            sent = time.monotonic()
            outcome = {"node": node.name, "reference": item["reference"], "sent": sent}
            try:
                http = http or HTTPConnection("127.0.0.1", node.http_port, timeout=15)
                http.request("POST", "/webhooks/kiosk/", body=item["body"], headers=item["headers"])
                response = http.getresponse()
                outcome["status"] = response.status
                outcome["answer"] = json.loads(response.read() or b"null")
            except (OSError, HTTPException, ValueError) as exc:
                outcome["status"] = exc.__class__.__name__
                if http is not None:
                    http.close()
                http = None
            outcome["done"] = time.monotonic()
            with self._lock:
                self.results.append(outcome)
        if http is not None:
            http.close()


def accepted(outcome: dict) -> bool:
    answer = outcome.get("answer")
    return (
        outcome["status"] == 200 and isinstance(answer, dict) and answer.get("status") == "accepted"
    )


def test_a_node_killed_mid_burst_loses_and_doubles_nothing(cluster, start_node):
    begun = time.monotonic()
    common = {"WEBHOOK_LEASE_SECONDS": str(LEASE_SECONDS), "WEB_CONCURRENCY": "1"}
    node_a = start_node("nodes-a", webhook_workers=2, run_periodic=True, **common)
    node_b = start_node("nodes-b", webhook_workers=1, run_periodic=True, **common)
    sessions = cluster.ticket_sessions(PAYMENTS)  # while the nodes start
    node_a.wait_ready(START_TIMEOUT)
    node_b.wait_ready(START_TIMEOUT)
    ready = time.monotonic()

    # Signed ahead of time; even-numbered to A, odd to B, interleaved over the burst.
    plan: dict[Node, list[dict]] = {node_a: [], node_b: []}
    event_of: dict[str, str] = {}
    for index, session in enumerate(sessions):
        event_id = f"msg_{uuid.uuid4().hex}"
        headers, body = kiosk_notification(
            secret=KIOSK_SECRET,
            reference=session["reference"],
            amount=session["amount"],
            currency=session["currency"],
            msg_id=event_id,
        )
        event_of[session["reference"]] = event_id
        plan[node_b if index % 2 else node_a].append(
            {
                "reference": session["reference"],
                "headers": {**headers, **PROXY_HEADERS},
                "body": body,
                "due": BURST_SECONDS * index / PAYMENTS,
            }
        )

    started = time.monotonic()
    burst = Burst(plan, started)
    burst.start()
    time.sleep(max(0.0, started + KILL_AFTER - time.monotonic()))
    pids_a = {str(pid) for pid in node_a.members()}
    node_a.kill()
    killed = time.monotonic()
    # What node A's webhook workers held when it died: claimed, not finished, leased.
    orphaned = {
        pk
        for pk, claimed_by in cluster.sql(
            "SELECT id, claimed_by FROM payments_webhookdelivery WHERE status = 'received' "
            "AND claimed_by <> ''"
        )
        if claimed_by.rpartition(":")[2] in pids_a
    }
    burst.join(timeout=BURST_SECONDS + 30)
    sent = time.monotonic()
    assert len(burst.results) == PAYMENTS

    by_node = {n.name: [o for o in burst.results if o["node"] == n.name] for n in plan}
    acked = {name: [o for o in outcomes if accepted(o)] for name, outcomes in by_node.items()}
    failed_a = [o for o in by_node[node_a.name] if not accepted(o)]
    # B, the node that lived, answered every one of its notifications "accepted".
    assert Counter(str(o["status"]) for o in by_node[node_b.name]) == {"200": PAYMENTS // 2}
    assert len(acked[node_b.name]) == PAYMENTS // 2
    # A answered "accepted" until it died, and nothing but a broken connection after: the
    # kill really fell in the middle of the burst.
    assert acked[node_a.name] and failed_a, "node A was not killed during the burst"
    failures = Counter(o["status"] for o in failed_a)
    assert all(isinstance(status, str) for status in failures), failures
    # The killed node's processes are gone, and so are its database sessions (and with
    # them its open transactions and row locks) once PostgreSQL notices.
    assert not node_a.members()
    try:
        wait_until(lambda: not cluster.connections(node_a.name), timeout=20, what="A's backends")
    except AssertionError:
        raise AssertionError(
            "node A's database connections outlived it by 20 s:\n"
            + "\n".join(map(repr, cluster.backends()))
        ) from None
    sessions_gone = time.monotonic()

    # B's workers confirm everything stored, A's claims included once their lease ends.
    def settled():
        return not cluster.sql(
            "SELECT 1 FROM payments_webhookdelivery WHERE status IN ('received', 'failed') LIMIT 1"
        )

    wait_until(settled, timeout=DRAIN_TIMEOUT, interval=0.25, what="node B to drain the deliveries")
    drained = time.monotonic()
    assert node_b.running(), f"node B stopped:\n{node_b.log_tail()}"

    deliveries = {
        event_id: (pk, status, attempts)
        for pk, event_id, status, attempts in cluster.sql(
            "SELECT id, event_id, status, attempts FROM payments_webhookdelivery "
            "WHERE provider = 'kiosk'"
        )
    }
    payments = {
        reference: (status, tickets, error)
        for reference, status, tickets, error in cluster.sql(
            "SELECT s.reference, s.status, count(t.id), s.fulfilment_error "
            "FROM payments_paymentsession s "
            "LEFT JOIN tickets_ticket t ON t.payment_session_id = s.id GROUP BY s.id"
        )
    }
    stored = {ref for ref, event in event_of.items() if event in deliveries}
    acknowledged = {o["reference"] for o in acked[node_a.name] + acked[node_b.name]}
    lost = {ref: payments[ref][2] or "no error" for ref in stored if payments[ref][1] == 0}
    doubled = {ref: row[1] for ref, row in payments.items() if row[1] > 1}
    attempts = {pk: tries for pk, _status, tries in deliveries.values()}
    print(
        f"\ntwo nodes: {PAYMENTS} notifications over {BURST_SECONDS:.1f} s, node A killed "
        f"{killed - started:.2f} s in; acknowledged by A {len(acked[node_a.name])}, "
        f"by B {len(acked[node_b.name])}; failed sends to A {len(failed_a)} {dict(failures)}; "
        f"stored {len(deliveries)} ({len(stored - acknowledged)} unacknowledged); A's claims "
        f"orphaned by the kill {len(orphaned)}, deliveries claimed more than once "
        f"{sum(1 for tries in attempts.values() if tries > 1)}; lost {len(lost)}, "
        f"doubled {len(doubled)}; A's database sessions gone {sessions_gone - killed:.1f} s "
        f"and everything processed {drained - killed:.1f} s after the kill "
        f"({drained - sent:.1f} s after the last send); nodes ready {ready - begun:.1f} s "
        f"after the start"
    )
    assert len(payments) == PAYMENTS
    assert len(stored) == len(deliveries)

    # Acknowledged means stored: each 2xx answer named the delivery that holds its event.
    for outcome in acked[node_a.name] + acked[node_b.name]:
        event = event_of[outcome["reference"]]
        assert event in deliveries, f"acknowledged but not stored: {outcome}"
        assert outcome["answer"]["delivery"] == deliveries[event][0]
    # Stored means processed, once: no delivery left waiting, none refused or duplicated.
    assert Counter(status for _pk, status, _attempts in deliveries.values()) == {
        "processed": len(deliveries)
    }
    assert cluster.sql("SELECT coalesce(sum(count), 0) FROM payments_webhookrefusal") == [(0,)]
    # What A held when it died was taken again, by B, after the lease.
    assert all(attempts[pk] >= 2 for pk in orphaned)
    # Processed means paid, once: each payment completed, with one audit row.
    audits = dict(
        cluster.sql(
            "SELECT action, count(*) FROM payments_paymentaudit "
            "WHERE action IN ('completed', 'fulfilled', 'fulfilment_failed') GROUP BY action"
        )
    )
    assert audits.get("completed") == len(stored), audits
    assert all(payments[ref][0] == "completed" for ref in stored)
    # Paid means one ticket, now: none lost (e.g. a fulfilment that failed and waits for
    # the reconciler), none doubled, none for a notification that was never stored.
    assert not lost, (
        f"{len(lost)} paid, stored notifications without their ticket, "
        f"fulfilment errors: {Counter(error.splitlines()[0] for error in lost.values())}; "
        f"e.g. {next(iter(lost.items()))}"
    )
    assert not doubled, f"payments with more than one ticket: {doubled}"
    unstored = {ref: row for ref, row in payments.items() if ref not in stored}
    assert all(row[:2] == ("pending", 0) for row in unstored.values())
    assert cluster.sql("SELECT count(*) FROM tickets_ticket") == [(len(stored),)]
    assert audits.get("fulfilled") == len(stored), audits
    # Each service's numbers run 1..n: no number skipped by a transaction the kill undid.
    numbers: dict[int, list[int]] = {}
    for service, number in cluster.sql(
        "SELECT service_id, number FROM tickets_ticket ORDER BY service_id, day, number"
    ):
        numbers.setdefault(service, []).append(number)
    for service, got in numbers.items():
        assert got == list(range(1, len(got) + 1)), f"service {service}: gaps or duplicates"

    # The periodic jobs: both nodes ran a scheduler, each job ran once per period between
    # them, and the survivor carries every job on after the kill: the frequent ones come
    # due by themselves; the others are made due now (their periods are minutes to hours).
    since_kill = time.monotonic() - killed
    ((killed_at,),) = cluster.sql("SELECT now() - make_interval(secs => %s)", (since_kill,))
    every = {
        " ".join([job["command"], *job.get("args", [])]): job["every"]
        for job in settings.PERIODIC_JOBS
    }
    lifetime = time.monotonic() - begun
    for name, runs, period in cluster.sql(
        "SELECT name, runs, every_seconds FROM config_periodicjob WHERE name = ANY(%s)",
        (list(every),),
    ):
        # Twice the runs would mean both schedulers ran it each period.
        assert runs <= lifetime / period + 2, (name, runs, period, lifetime)
    cluster.sql(
        "UPDATE config_periodicjob SET next_due_at = now() "
        "WHERE every_seconds > 15 AND name = ANY(%s) RETURNING id",
        (list(every),),
    )
    deadline = time.monotonic() + 40
    while time.monotonic() < deadline:
        rows = dict(
            cluster.sql(
                "SELECT name, last_started_at FROM config_periodicjob WHERE name = ANY(%s)",
                (list(every),),
            )
        )
        if len(rows) == len(every) and all(at and at > killed_at for at in rows.values()):
            break
        time.sleep(0.5)
    late = {name: rows.get(name) for name in every if not (rows.get(name) or killed_at) > killed_at}
    assert not late, f"periodic jobs not run by the survivor since the kill: {late}"
    print(f"all {len(every)} periodic jobs ran on the survivor after the kill")
