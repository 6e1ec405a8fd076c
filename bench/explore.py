"""`python -m bench --explore`: the measurements behind the serving layout.

For several gunicorn layouts (workers × threads, persistent database connections) it
measures, in the same run, the bare INSERT+COMMIT endpoint and the product's kiosk webhook;
then both endpoints served by one daphne process instead (the one-command run's layout,
where the webhooks run in a thread pool of their own).
"""

from __future__ import annotations

import asyncio

from bench.loadgen import Request, closed_loop
from bench.scenarios import Context, Row, insert_requests, kiosk_requests

LAYOUTS = [
    ("gunicorn 2×8", {"WEB_CONCURRENCY": "2", "GUNICORN_THREADS": "8"}),
    ("gunicorn 4×4", {"WEB_CONCURRENCY": "4", "GUNICORN_THREADS": "4"}),
    ("gunicorn 1×16", {"WEB_CONCURRENCY": "1", "GUNICORN_THREADS": "16"}),
    ("gunicorn 3×8", {"WEB_CONCURRENCY": "3", "GUNICORN_THREADS": "8"}),
    (
        "gunicorn 2×8 CONN_MAX_AGE=0",
        {"WEB_CONCURRENCY": "2", "GUNICORN_THREADS": "8", "CONN_MAX_AGE": "0"},
    ),
]


def explore(ctx: Context) -> list[Row]:
    stack, world = ctx.stack, ctx.world
    count, seconds, concurrency = ctx.n(300, 800), ctx.n(10, 25), 32
    rows: list[Row] = []
    details: dict = {}

    def measure(url: str, requests: list[Request]):
        return asyncio.run(closed_loop(url, requests, concurrency=concurrency, max_seconds=seconds))

    for name, env in LAYOUTS:
        stack.start(extra_env=env)
        warm = world.ticket_sessions(32)
        measure(stack.http_url, insert_requests(32))
        measure(stack.http_url, kiosk_requests(stack.kiosk_secret, warm))
        base = measure(stack.http_url, insert_requests(count))
        refs = world.ticket_sessions(count)
        product = measure(stack.http_url, kiosk_requests(stack.kiosk_secret, refs))
        details[name] = {"insert_commit": base.as_dict(), "kiosk_webhook": product.as_dict()}
        rows += [
            Row(f"explore {name}", "INSERT+COMMIT", "req/s", base.rate),
            Row(f"explore {name}", "kiosk webhook", "notif/s", product.rate, base.rate,
                "INSERT+COMMIT", note=f"p50 {product.ms(50):.0f} ms p99 {product.ms(99):.0f} ms"),
        ]  # fmt: skip

    # HTTP through one daphne process (ASGI), as the one-command run serves it.
    stack.start()
    base = measure(stack.daphne_http_url, insert_requests(count))
    refs = world.ticket_sessions(count)
    product = measure(stack.daphne_http_url, kiosk_requests(stack.kiosk_secret, refs))
    details["daphne ×1 (HTTP)"] = {
        "insert_commit": base.as_dict(),
        "kiosk_webhook": product.as_dict(),
    }
    rows += [
        Row("explore daphne ×1", "INSERT+COMMIT (sync view)", "req/s", base.rate),
        Row("explore daphne ×1", "kiosk webhook (thread pool)", "notif/s", product.rate, base.rate,
            "INSERT+COMMIT", note=f"p50 {product.ms(50):.0f} ms p99 {product.ms(99):.0f} ms"),
    ]  # fmt: skip
    ctx.details["explore"] = details
    return rows
