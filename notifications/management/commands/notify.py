import json

from django.core.management.base import BaseCommand, CommandError

from config.errors import ConfirmaError
from notifications.services import event_publish


class Command(BaseCommand):
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
            raise CommandError(f"--data is not valid JSON: {exc.msg}") from exc
        if not isinstance(payload, dict):
            raise CommandError("--data must be a JSON object")
        try:
            events = event_publish(audience=audience, type=type, payload=payload)
        except ConfirmaError as exc:
            raise CommandError(exc.message) from exc
        for event in events:
            self.stdout.write(f"published event {event.id} {event.type} to {event.audience}")
