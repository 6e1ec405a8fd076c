"""`manage.py notify`: publish an event to audiences, live. Exit status 0 when published,
2 when nothing was (bad input, or the database or the channel layer unreachable: a retry
never publishes twice)."""

import json

from config.commands import ConfirmaCommand, usage_error
from config.errors import ConfirmaError
from config.selectors import channel_layer_health
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
        layer = channel_layer_health()
        if not layer["ok"]:
            raise usage_error(
                f"the channel layer is unreachable ({layer.get('error', '')}): nothing "
                "published, as it could not reach anyone live"
            )
        try:
            events = event_publish(audience=audience, type=type, payload=payload)
        except ConfirmaError as exc:
            raise usage_error(exc.message) from exc
        for event in events:
            self.stdout.write(f"published event {event.id} {event.type} to {event.audience}")
