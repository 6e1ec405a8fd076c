"""The benchmark harness's building blocks still work (the benchmark itself is `make
bench`, not part of the suite)."""

import json

import pytest
from django.urls import Resolver404, resolve
from standardwebhooks.webhooks import Webhook

from bench import cli, loadgen, scenarios, views
from bench.stack import PROXY_HEADERS

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
