from django.core.management.base import BaseCommand, CommandError

from config.durations import parse_duration
from notifications.services import events_prune


class Command(BaseCommand):
    help = "Delete events older than a duration (e.g. --older-than 30d) to keep the log bounded."

    def add_arguments(self, parser):
        parser.add_argument("--older-than", required=True, help="30d, 12h, 15m, 90s or 2w")
        parser.add_argument("--batch-size", type=int, default=5000)

    def handle(self, *args, older_than, batch_size, **options):
        try:
            age = parse_duration(older_than)
        except ValueError as exc:
            raise CommandError(str(exc)) from exc
        if batch_size < 1:
            raise CommandError("--batch-size must be at least 1")
        deleted = events_prune(older_than=age, batch_size=batch_size)
        self.stdout.write(f"pruned {deleted} events older than {older_than}")
