"""`manage.py notify`: publish an event to audiences. Exit status 0 when it is in the event
log (screens get it live, or from the log when they come back: with Redis away the push
waits for them), 2 when nothing was published (bad input, or the database unreachable)."""

import json

from core.commands import ConfirmaCommand, usage_error
from core.errors import ConfirmaError
from notifications.services import event_publish


class Command(ConfirmaCommand):
    help = "Publish an event to an audience (e.g. role:cashier) from the command line."

    def add_arguments(self, parser):
        parser.add_argument(
            "--audience",
            action="append",
            required=True,
            help="user:<id>, role:<name>, display:<name>, payment:<ref> or "
            "machine:<id>; repeat for several",
        )
        parser.add_argument("--type", required=True, help="dotted event type, e.g. staff.notice")
        parser.add_argument("--data", default="{}", help="JSON object with the payload")

    def handle(self, *args, audience, type, data, **options):
        try:
            payload = json.loads(data)
        except json.JSONDecodeError as exc:
            raise usage_error(f"--data is not valid JSON: {exc.msg}") from exc
        if not isinstance(payload, dict):
            raise usage_error("--data must be a JSON object")
        try:
            events = event_publish(audience=audience, type=type, payload=payload)
        except ConfirmaError as exc:
            raise usage_error(exc.message) from exc
        for event in events:
            self.stdout.write(f"published event {event.id} {event.type} to {event.audience}")
