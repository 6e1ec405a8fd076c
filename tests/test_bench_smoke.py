"""The benchmark harness's building blocks still work (the benchmark itself is `make
bench`, not part of the suite)."""

import json

import pytest
from django.urls import Resolver404, resolve
from standardwebhooks.webhooks import Webhook

from bench import cli, loadgen, scenarios, views
from bench.stack import PROXY_HEADERS, WaitSampler

SECRET = "whsec_c21va2UtdGVzdC1zZWNyZXQtMTIzNDU2Nzg="


def test_percentile_maths():
    assert loadgen.percentile([], 50) is None
    assert loadgen.percentile([7], 99) == 7
    values = list(range(1, 101))  # 1..100
    assert loadgen.percentile(values, 0) == 1
    assert loadgen.percentile(values, 100) == 100
    assert loadgen.percentile(values, 50) == pytest.approx(50.5)
    assert loadgen.percentile(values, 99) == pytest.approx(99.01)
    assert loadgen.percentile([3, 1, 2], 50) == 2  # sorts first
    with pytest.raises(ValueError):
        loadgen.percentile(values, 101)


def test_summary_rates_and_milliseconds():
    summary = loadgen.Summary(count=4, elapsed=2.0, latencies=[0.01, 0.02, 0.03, 0.04])
    assert summary.rate == 2.0
    assert summary.ms(50) == pytest.approx(25.0)
    data = summary.as_dict()
    assert data["rate_per_s"] == 2.0 and data["p50_ms"] == 25.0
    assert loadgen.Summary().rate == 0.0


def test_spread_round_robin():
    assert loadgen.spread(["a", "b"], 5) == ["a", "b", "a", "b", "a"]


def test_baseline_urlconf_mounts_the_product_and_the_baselines():
    assert resolve("/bench/insert/", urlconf="bench.urls").func is views.insert
    assert resolve("/bench/group-send/", urlconf="bench.urls").func is views.group_send
    assert resolve("/bench/print/", urlconf="bench.urls").func is views.print_enqueue
    assert (
        resolve("/webhooks/kiosk/", urlconf="bench.urls").url_name
        == resolve("/webhooks/kiosk/").url_name
    )
    with pytest.raises(Resolver404):
        resolve("/bench/insert/")  # never in the product's URLs


def test_signed_kiosk_requests_verify():
    requests = scenarios.kiosk_requests(SECRET, ["ps_" + "a" * 24])
    request = requests[0]
    assert request.path == "/webhooks/kiosk/"
    assert request.key == "ps_" + "a" * 24
    assert request.headers["X-Forwarded-Proto"] == PROXY_HEADERS["X-Forwarded-Proto"]
    Webhook(SECRET).verify(request.body, request.headers)
    assert json.loads(request.body)["reference"] == request.key
    # Sent again, a session's notification is the same payment under a new message id.
    again = scenarios.kiosk_requests(SECRET, [request.key])[0]
    assert again.headers["webhook-id"] != request.headers["webhook-id"]
    assert json.loads(again.body)["transaction_id"] == json.loads(request.body)["transaction_id"]


def test_frame_keys_and_rows():
    assert scenarios.frame_key({"type": "ticket.created", "payload": {"reference": "r"}}) == "r"
    assert scenarios.frame_key({"type": "bench.ping", "payload": {"reference": "7"}}) == "7"
    assert scenarios.frame_key({"type": "heartbeat"}) is None
    row = scenarios.Row("b", "f", "ms", 50.0, 100.0, target="≤ baseline", passed=True)
    assert row.ratio == 0.5 and row.result == "pass"
    assert scenarios.Row("b", "f", "s", None, note="not available").result == "not available"


def test_table_prints(capsys):
    cli.print_table([scenarios.Row("1 x", "rate", "req/s", 120.0, 200.0, "bare", "≥ 0.6", True)])
    out = capsys.readouterr().out
    assert "1 x" in out and "0.60" in out and "pass" in out


def test_answer_labels():
    assert loadgen.answer_label(b'{"status": "accepted", "delivery": 7}') == "accepted"
    assert loadgen.answer_label(b'{"error": "invalid signature"}') == "error"
    assert loadgen.answer_label(b"<html>Bad Request</html>") == "-"
    assert loadgen.answer_label(b"[1, 2]") == "-"
    assert loadgen.answer_label(b"") == "-"


def test_windows_group_by_send_time():
    started = [10.1, 10.5, 11.2, 13.0]
    took = [0.010, 0.020, 0.030, 0.040]
    out = loadgen.windows(started, took, origin=10.0, pct=100)
    assert [w["window"] for w in out] == [0, 1, 3]  # an empty second is not invented
    assert [w["count"] for w in out] == [2, 1, 1]
    assert out[0]["p_ms"] == 20.0 and out[2]["p_ms"] == 40.0
    assert loadgen.windows([], [], origin=0) == []
    with pytest.raises(ValueError):
        loadgen.windows([1.0], [], origin=0)


def test_loopback_addresses_are_distinct_and_loopback():
    import ipaddress

    seen = {loadgen.loopback_address(n) for n in range(70_000)}
    assert len(seen) == 70_000
    assert loadgen.loopback_address(0) == "127.1.1.1"
    for text in (loadgen.loopback_address(253), loadgen.loopback_address(254), max(seen)):
        address = ipaddress.ip_address(text)
        assert address.is_loopback
        assert all(0 < int(octet) < 255 for octet in text.split(".")[1:])
    with pytest.raises(ValueError):
        loadgen.loopback_address(-1)


def test_source_patterns():
    patterns = scenarios.SOURCE_PATTERNS
    assert {patterns["1 address"](s, n) for s in range(32) for n in range(100)} == {"127.0.0.1"}
    sixteen = patterns["16 addresses"]
    assert len({sixteen(s, n) for s in range(32) for n in range(100)}) == 16
    assert sixteen(3, 0) == sixteen(3, 99)  # one sender keeps its address (and connection)
    per_request = patterns["an address per request"]
    assert len({per_request(n % 32, n) for n in range(1000)}) == 1000


def test_unsigned_requests_never_verify():
    from standardwebhooks.webhooks import WebhookVerificationError

    bodies = scenarios.padded_bodies(2, 64 * 1024)
    assert [len(body) for body in bodies] == [65536, 65536]
    assert bodies[0] != bodies[1]
    json.loads(bodies[0])
    requests = scenarios.unsigned_requests(4, bodies)
    assert [bool(r.headers.get("webhook-signature")) for r in requests] == [False, True] * 2
    for request in requests:
        assert request.path == "/webhooks/kiosk/"
        with pytest.raises(WebhookVerificationError):
            Webhook(SECRET).verify(request.body, request.headers)
    same = scenarios.insert_requests(3, bodies)
    assert [r.body for r in same] == [bodies[0], bodies[1], bodies[0]]
    assert scenarios.insert_requests(1)[0].body != bodies[0]


def test_kiosk_requests_take_message_ids():
    refs = ["ps_" + "b" * 24, "ps_" + "c" * 24]
    requests = scenarios.kiosk_requests(SECRET, refs, msg_ids=["msg_1", "msg_2"])
    assert [r.headers["webhook-id"] for r in requests] == ["msg_1", "msg_2"]
    for request in requests:
        Webhook(SECRET).verify(request.body, request.headers)


def test_overload_schedule_repeats_some_sessions_later():
    refs = [f"r{i}" for i in range(200)]
    schedule = scenarios.overload_schedule(refs, every=20, later=50)
    assert [ref for ref, kind in schedule if kind == "first"] == refs
    retries = [ref for ref, kind in schedule if kind == "retry"]
    resends = [ref for ref, kind in schedule if kind == "resend"]
    assert retries == [f"r{i}" for i in range(0, 200, 20)]
    assert resends == [f"r{i}" for i in range(10, 200, 20)]
    for ref, kind in schedule:
        if kind != "first":  # always after the session's first notification
            assert schedule.index((ref, "first")) < schedule.index((ref, kind))


def test_targets_and_ratios():
    assert scenarios.latency_target_ms(100) == 250
    assert scenarios.latency_target_ms(50) == 100
    assert scenarios.latency_target_ms(10) is None
    assert scenarios.ratio_at_least(70, 100, 0.7) is True
    assert scenarios.ratio_at_least(69, 100, 0.7) is False
    assert scenarios.ratio_at_least(None, 100, 0.7) is None
    assert scenarios.ratio_at_least(5, 0, 0.7) is None
    assert scenarios.ratio_at_most(300, 100, 3) is True
    assert scenarios.ratio_at_most(301, 100, 3) is False


def test_scenario_names():
    assert {"intake", "refusals", "capacity", "overload", "latency-50"} <= set(cli.SCENARIOS)
    assert cli.ALIASES["throughput"] in cli.SCENARIOS
    assert set(cli.SCENARIOS) >= cli.INFO_ONLY


def test_top_waits_text():
    means = {"Lock:object": 3.1, "IO:WALSync": 0.5, "cpu": 0.25, "LWLock:WALWrite": 0.1, "x": 0}
    assert scenarios.top_waits(means, 2) == "Lock:object 3.1, IO:WALSync 0.5"
    assert scenarios.top_waits({}) == "-"
    sampler = WaitSampler("postgres://unused")  # never started: no samples, no means
    assert sampler.means() == {}
