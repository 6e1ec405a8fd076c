"""`python -m bench [--quick] [--only …] [--profile] [--explore]`.

Starts the production layout (scripts/serve.sh) on its own database, runs the benchmarks,
prints the table and writes var/bench/results-<timestamp>.json.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import functools
import json
import os
import platform
import resource
import subprocess
import sys
import time
import traceback
from datetime import UTC, datetime

from bench.stack import ROOT, Stack, run_secrets

# Order: the scenarios that load the servers hardest (latency at 100/s, overload at three
# times the confirmation capacity) run after the ones that need a quiet system; growth has
# a stack of its own.
SCENARIOS = (
    "intake", "refusals", "capacity", "printing", "fanout", "latency-10", "latency-50",
    "latency", "overload", "growth",
)  # fmt: skip
# Earlier names still accepted by --only.
ALIASES = {"throughput": "intake"}
# Screen latencies at lower rates (latency is 100/s); 10/s is for information only and the
# quick run leaves it out.
LOWER_LATENCIES = {"latency-10": 10.0, "latency-50": 50.0}
INFO_ONLY = {"latency-10"}


def _parse(argv):
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="smaller counts (< 3 minutes)")
    parser.add_argument(
        "--only", default="", help=f"comma-separated subset of {', '.join(SCENARIOS)}"
    )
    parser.add_argument(
        "--profile", action="store_true", help="sample the servers with py-spy (var/bench/)"
    )
    parser.add_argument(
        "--layer",
        choices=("pubsub", "core"),
        default="pubsub",
        help="channel layer: the product's (pubsub: channels_redis RedisPubSubChannelLayer) "
        "or, to compare, channels_redis's queue-based RedisChannelLayer (core)",
    )
    parser.add_argument(
        "--explore",
        action="store_true",
        help="compare serving layouts (gunicorn workers × threads, persistent database "
        "connections on or off, daphne for HTTP) instead of the benchmarks",
    )
    return parser.parse_args(argv)


def environment() -> dict:
    info = {
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "cpus": os.cpu_count(),
        "python": platform.python_version(),
        "platform": platform.platform(),
    }
    try:
        with open("/proc/meminfo") as meminfo:
            kib = int(meminfo.readline().split()[1])
        info["memory_gib"] = round(kib / 1024 / 1024, 1)
    except (OSError, ValueError, IndexError):
        pass
    try:
        from django.db import connection

        with connection.cursor() as cursor:
            cursor.execute("SHOW server_version")
            info["postgresql"] = cursor.fetchone()[0]
    except Exception as exc:  # the figures matter more than the version line
        info["postgresql"] = f"unknown ({exc.__class__.__name__})"
    try:
        import redis
        from django.conf import settings

        client = redis.Redis.from_url(settings.REDIS_URL)
        info["redis"] = client.info("server")["redis_version"]
        client.close()
    except Exception as exc:
        info["redis"] = f"unknown ({exc.__class__.__name__})"
    with contextlib.suppress(OSError):
        info["commit"] = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"],  # noqa: S607
            cwd=ROOT, capture_output=True, text=True, check=False,
        ).stdout.strip()  # fmt: skip
    return info


def _fmt(value, unit: str = "") -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        text = f"{value:.0f}" if abs(value) >= 100 else f"{value:.3g}"
    else:
        text = str(value)
    return f"{text} {unit}".strip()


def print_table(rows) -> None:
    header = ("benchmark", "figure", "Confirma", "baseline", "ratio", "target", "result")
    lines = [header]
    for row in rows:
        base = _fmt(row.baseline, row.unit)
        if row.baseline_label and row.baseline is not None:
            base = f"{base} ({row.baseline_label})"
        ratio = "-" if row.ratio is None else f"{row.ratio:.2f}"
        lines.append(
            (row.bench, row.figure, _fmt(row.value, row.unit), base, ratio,
             row.target or "-", row.result)
        )  # fmt: skip
    widths = [max(len(str(line[i])) for line in lines) for i in range(len(header))]
    for index, line in enumerate(lines):
        print("  ".join(str(cell).ljust(width) for cell, width in zip(line, widths, strict=True)))
        if index == 0:
            print("  ".join("-" * width for width in widths))
    for row in rows:
        if row.note:
            print(f"  · {row.bench} {row.figure}: {row.note}")


def _raise_file_limit() -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    wanted = min(hard, 65536) if hard != resource.RLIM_INFINITY else 65536
    if soft < wanted:
        resource.setrlimit(resource.RLIMIT_NOFILE, (wanted, hard))


def main(argv=None) -> int:
    args = _parse(argv)
    only = {ALIASES.get(name.strip(), name.strip()) for name in args.only.split(",")} - {""}
    unknown = only - set(SCENARIOS)
    if unknown:
        print(f"unknown scenarios: {', '.join(sorted(unknown))}", file=sys.stderr)
        return 2
    default = [n for n in SCENARIOS if not (args.quick and n in INFO_ONLY)]
    selected = [name for name in SCENARIOS if name in only] if only else default
    _raise_file_limit()
    stamp = datetime.now(UTC).strftime("%Y%m%d-%H%M%S")
    outdir = ROOT / "var" / "bench"
    workdir = outdir / f"run-{stamp}"
    workdir.mkdir(parents=True, exist_ok=True)
    shared = run_secrets()

    def make_stack(label: str) -> Stack:
        stack = Stack(workdir=workdir, label=label, **shared)
        if args.layer == "core":
            stack.env["BENCH_CHANNEL_LAYER"] = "core"
        stack.create()
        return stack

    started = time.monotonic()
    main_stack = make_stack("main")
    from bench.fixtures import World, close_connections, django_setup
    from bench.printer import LoopbackPrinter

    django_setup(main_stack.env)
    printer = LoopbackPrinter()
    results: dict = {
        "mode": "explore" if args.explore else ("quick" if args.quick else "full"),
        "command": "python -m bench " + " ".join(argv if argv is not None else sys.argv[1:]),
        "environment": environment(),
        "layout": {
            "http": "gunicorn gthread (config/gunicorn.conf.py)",
            "web_concurrency": os.environ.get("WEB_CONCURRENCY") or os.cpu_count(),
            "gunicorn_threads": os.environ.get("GUNICORN_THREADS") or 8,
            "daphne_processes": main_stack.daphne,
            "webhook_workers": main_stack.webhook_workers,
            "db_workers": 1,
            "channel_layer": args.layer,
        },
    }
    rows = []
    failures = {}
    try:
        from bench import scenarios

        world = World(printer_url=printer.url)
        ctx = scenarios.Context(
            stack=main_stack, world=world, printer=printer, quick=args.quick,
            outdir=workdir, profile=args.profile,
        )  # fmt: skip
        if args.explore:
            from bench.explore import explore

            rows = explore(ctx)
        else:
            runners = {
                "intake": scenarios.webhook_intake,
                "refusals": scenarios.webhook_refusals,
                "capacity": scenarios.confirmation_capacity,
                "overload": scenarios.overload,
                "latency": scenarios.screen_latency,
                **{
                    name: functools.partial(scenarios.screen_latency, rate=rate)
                    for name, rate in LOWER_LATENCIES.items()
                },
                "fanout": scenarios.fan_out,
                "printing": scenarios.paid_to_printed,
            }
            first = True
            for name in selected:
                print(f"bench: {name}…", flush=True)
                try:
                    if name == "growth":
                        main_stack.close()
                        rows += scenarios.growth(ctx, make_stack)
                        continue
                    if first:
                        main_stack.start()
                        first = False
                    rows += runners[name](ctx)
                except Exception as exc:
                    traceback.print_exc()
                    failures[name] = f"{exc.__class__.__name__}: {exc}"[:2000]
        results["details"] = ctx.details
        results["profiles"] = ctx.profiles
    finally:
        printer.close()
        close_connections()
        main_stack.close()
        asyncio.set_event_loop(None)
    results["rows"] = [row.as_dict() for row in rows]
    results["failures"] = failures
    results["seconds"] = round(time.monotonic() - started, 1)
    path = outdir / f"results-{stamp}.json"
    path.write_text(json.dumps(results, indent=2, default=str))
    print()
    print_table(rows)
    for name, error in failures.items():
        print(f"  ! {name} failed: {error.splitlines()[0]}")
    print(f"\n{len(rows)} figures in {results['seconds']} s; results in {path.relative_to(ROOT)}")
    return 1 if failures else 0
