"""Find (and with --repair, repair) payments that completed without delivering what they
paid for. Cron-friendly: exit 0 healthy, 1 gaps or failures found, 2 could not run."""

import json
import logging
import sys
import time

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.serializers.json import DjangoJSONEncoder

from config.nodes import periodic_overdue, tasks_orphaned, tasks_recover
from core.commands import ConfirmaCommand, usage_error
from notifications.services import alert_raise
from payments.services.deliveries import backlog
from payments.services.monitor import REPAIRABLE, gaps_find, gaps_repair, user_overview


def _age(seconds: int | None) -> str:
    if seconds is None:
        return "-"
    if seconds < 120:
        return f"{seconds}s"
    if seconds < 7200:
        return f"{seconds // 60}m"
    if seconds < 172800:
        return f"{seconds // 3600}h"
    return f"{seconds // 86400}d"


class Command(ConfirmaCommand):
    help = (
        "Payments completed but not fulfilled, held for a staff decision, or one user's "
        "story. `check` lists gaps, `watch` repeats and prints changes, `user` reports one "
        "user. --repair re-runs fulfilment through the payments core."
    )

    def add_arguments(self, parser):
        sub = parser.add_subparsers(dest="action", required=True, help="what to do")
        helps = {
            "check": "list the gaps once",
            "watch": "check repeatedly, printing only what changed",
        }
        for name in ("check", "watch"):
            cmd = sub.add_parser(name, help=helps[name])
            cmd.add_argument("--repair", action="store_true", help="re-run fulfilment for gaps")
            cmd.add_argument("--json", action="store_true", help="machine-readable output")
            cmd.add_argument("--limit", type=int, default=1000, help="gaps listed at most")
            if name == "watch":
                cmd.add_argument(
                    "--interval", type=float, default=10.0, help="seconds between rounds"
                )
                cmd.add_argument("--count", type=int, default=0, help="rounds (0: forever)")
        cmd = sub.add_parser("user", help="one user's payments, subscription and events")
        cmd.add_argument("who", help="user id, username or e-mail")
        cmd.add_argument("--json", action="store_true", help="machine-readable output")
        cmd.add_argument(
            "--limit", type=int, default=50, help="rows listed per section (default 50)"
        )

    def handle(self, *args, **options):
        if options["action"] == "user":
            code = self._user(options)
        elif options["action"] == "watch":
            code = self._watch(options)
        else:
            code = self._round(options, previous=None)[0]
        if code:
            sys.exit(code)

    # --- check / watch -------------------------------------------------------------------

    def _round(self, options, previous: set | None):
        if options["limit"] < 1:
            raise usage_error("--limit must be at least 1")
        gaps, total = gaps_find(limit=options["limit"])
        report = gaps_repair(gaps) if options["repair"] else None
        if report and report.repaired:
            repaired = set(report.repaired)
            gaps = [g for g in gaps if g.reference not in repaired or g.kind != REPAIRABLE]
            total -= len(repaired)
        for reference, error in report.failed.items() if report else ():
            alert_raise(
                code="monitor.repair_failed",
                message="A paid payment could not be fulfilled by the reconciler.",
                context={"reference": reference, "error": error[:300]},
                dedupe_key=reference,
            )
        keys = {g.key for g in gaps}
        nodes = self._nodes(repair=options["repair"]) if previous is None else None
        if previous is None and self.quiet:
            self._summarise(gaps, total, report, nodes)
        elif previous is None:
            self._print_all(options, gaps, total, report, nodes)
        else:
            self._print_changes(options, gaps, previous, report)
        failed = bool(report and report.failed) or bool(nodes and nodes["problems"])
        return (1 if total or failed else 0), keys, gaps

    @staticmethod
    def _nodes(*, repair: bool) -> dict:
        """What dead nodes may leave behind: deliveries waiting too long, tasks left
        running, periodic jobs overdue (orphaned tasks recovered with --repair)."""
        waiting = backlog()
        orphans = tasks_orphaned()
        recovered = tasks_recover(orphans) if repair and orphans else {}
        overdue = periodic_overdue()
        stuck = waiting["oldest_seconds"] > settings.WEBHOOK_BACKLOG_ALERT_SECONDS
        unrecovered = [str(t.pk) for t in orphans if str(t.pk) not in recovered]
        return {
            "webhook_backlog": {**waiting, "too_old": stuck},
            "orphaned_tasks": [
                {"id": str(t.pk), "path": t.task_path, "action": recovered.get(str(t.pk))}
                for t in orphans
            ],
            "periodic_overdue": [job.as_dict() for job in overdue],
            "problems": bool(stuck or unrecovered or overdue),
        }

    def _print_all(self, options, gaps, total, report, nodes) -> None:
        if options["json"]:
            payload = {
                "gaps": [g.as_dict() for g in gaps],
                "total": total,
                "repaired": report.repaired if report else [],
                "repair_failed": report.failed if report else {},
                "nodes": nodes,
            }
            self.stdout.write(json.dumps(payload, cls=DjangoJSONEncoder))
            return
        self._print_nodes(nodes)
        if report:
            self.stdout.write(
                f"repaired {len(report.repaired)}, still failing {len(report.failed)}"
            )
            for reference in report.repaired:
                self.stdout.write(f"  repaired {reference}")
        if not gaps:
            self.stdout.write("no gaps: every completed payment delivered what it paid for")
            return
        self.stdout.write(
            f"{'KIND':<16} {'REFERENCE':<30} {'PURPOSE':<16} {'PROVIDER':<12} "
            f"{'AMOUNT':>14} {'PAID':>6}  REASON"
        )
        for gap in gaps:
            self.stdout.write(self._line(gap))
        more = f" ({total - len(gaps)} more not listed)" if total > len(gaps) else ""
        self.stdout.write(f"{total} gap(s){more}")

    def _summarise(self, gaps, total, report, nodes) -> None:
        """A scheduled check: one log line when it found or repaired something."""
        repaired = len(report.repaired) if report else 0
        failing = len(report.failed) if report else 0
        problems = bool(total or failing or nodes["problems"])
        self.summary(
            f"{total} gap(s), {repaired} repaired, {failing} still failing; "
            f"{len(nodes['orphaned_tasks'])} orphaned task(s), "
            f"{len(nodes['periodic_overdue'])} overdue periodic job(s), webhook backlog "
            f"{'too old' if nodes['webhook_backlog']['too_old'] else 'fine'}",
            happened=bool(problems or repaired),
            level=logging.WARNING if problems else logging.INFO,
            gaps=[g.as_dict() for g in gaps[:20]],
            total=total,
            repaired=report.repaired if report else [],
            repair_failed=report.failed if report else {},
        )

    def _print_nodes(self, nodes: dict) -> None:
        waiting = nodes["webhook_backlog"]
        if waiting["too_old"]:
            self.stdout.write(
                f"webhooks: {waiting['waiting']} deliveries waiting, the oldest for "
                f"{waiting['oldest_seconds']} s: are the webhook workers running?"
            )
        for task in nodes["orphaned_tasks"]:
            action = task["action"] or "left running by a stopped worker (--repair recovers it)"
            self.stdout.write(f"task {task['id']} ({task['path']}): {action}")
        for job in nodes["periodic_overdue"]:
            self.stdout.write(
                f"periodic job {job['job']!r} overdue by {job['late_seconds']} s "
                f"(every {job['every_seconds']} s, last on {job['last_node'] or '-'})"
            )

    @staticmethod
    def _line(gap) -> str:
        amount = f"{gap.amount} {gap.currency}"
        return (
            f"{gap.kind:<16} {gap.reference:<30} {gap.purpose:<16} {gap.provider:<12} "
            f"{amount:>14} {_age(gap.paid_seconds_ago):>6}  {gap.reason[:80]}"
        )

    def _print_changes(self, options, gaps, previous: set, report) -> None:
        current = {g.key: g for g in gaps}
        new = [g for key, g in current.items() if key not in previous]
        gone = [key for key in previous if key not in current]
        for gap in new:
            alert_raise(
                code="monitor.gap",
                message="A completed payment has not delivered what it paid for.",
                context={"reference": gap.reference, "kind": gap.kind, "purpose": gap.purpose},
                dedupe_key=f"{gap.kind}:{gap.reference}",
            )
        if options["json"]:
            for gap in new:
                self.stdout.write(json.dumps({"change": "new", **gap.as_dict()}))
            for kind, reference in gone:
                self.stdout.write(
                    json.dumps({"change": "resolved", "kind": kind, "reference": reference})
                )
            return
        for gap in new:
            self.stdout.write("+ " + self._line(gap))
        for kind, reference in gone:
            self.stdout.write(f"- {kind:<16} {reference} resolved")

    def _watch(self, options) -> int:
        rounds, code, previous = 0, 0, None
        while True:
            code, keys, gaps = self._round(options, previous=previous if rounds else None)
            if rounds == 0:
                for gap in gaps:
                    alert_raise(
                        code="monitor.gap",
                        message="A completed payment has not delivered what it paid for.",
                        context={
                            "reference": gap.reference,
                            "kind": gap.kind,
                            "purpose": gap.purpose,
                        },
                        dedupe_key=f"{gap.kind}:{gap.reference}",
                    )
            previous = keys
            rounds += 1
            self.stdout.flush()
            if options["count"] and rounds >= options["count"]:
                return code
            time.sleep(max(0.1, options["interval"]))

    # --- user ----------------------------------------------------------------------------

    def _user(self, options) -> int:
        who = options["who"].strip()
        users = get_user_model().objects
        user = None
        if who.isdigit():
            user = users.filter(pk=int(who)).first()
        user = user or users.filter(username=who).first() or users.filter(email__iexact=who).first()
        if user is None:
            raise usage_error(f"no user {who[:60]!r}")
        overview = user_overview(user=user, limit=options["limit"])
        if options["json"]:
            self.stdout.write(json.dumps(overview, cls=DjangoJSONEncoder))
            return 0
        u = overview["user"]
        self.stdout.write(f"user {u['id']} {u['username']} <{u['email']}>")
        sub = overview.get("subscription")
        if sub:
            self.stdout.write(
                f"subscription: {sub['status']} {sub['plan'] or '-'} ({sub['tier'] or '-'}) "
                f"until {sub['current_period_end'] or '-'}"
            )
        self.stdout.write("payments (newest first):")
        for p in overview["payments"]:
            fulfilled = {True: "fulfilled", False: "NOT FULFILLED", None: ""}[p["fulfilled"]]
            held = " HELD" if p["held"] else ""
            self.stdout.write(
                f"  {p['created_at'][:19]} {p['reference']} {p['purpose']:<16} "
                f"{p['provider']:<12} {p['amount']} {p['currency']} {p['status']} "
                f"{fulfilled}{held} {p['fulfilment_error'][:60]}"
            )
        for title, key in (
            ("subscription events", "subscription_events"),
            ("usage sessions", "usage_sessions"),
            ("events", "events"),
        ):
            rows = overview.get(key) or []
            if rows:
                self.stdout.write(f"{title} (newest first):")
                for row in rows:
                    self.stdout.write("  " + " ".join(str(v) for v in row.values() if v))
        return 0
