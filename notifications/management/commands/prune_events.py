"""`manage.py prune_events`: delete events older than a given age (`prune` applies all
the retention settings at once). Shows its progress on a terminal and one line per delete
with `-v 2`. Exit status 0 on success, 2 when it could not run (bad option, database
unavailable)."""

from core.commands import ConfirmaCommand, rows_watched, usage_error
from core.durations import parse_duration
from notifications.models import Event
from notifications.services import events_prune


class Command(ConfirmaCommand):
    help = "Delete events older than a duration (e.g. --older-than 30d) to keep the log bounded."

    def add_arguments(self, parser):
        parser.add_argument(
            "--older-than",
            required=True,
            help="age of the events to delete: 30d, 12h, 15m, 90s or 2w",
        )
        parser.add_argument(
            "--batch-size", type=int, default=5000, help="events per delete (default 5000)"
        )

    def handle(self, *args, older_than, batch_size, **options):
        try:
            age = parse_duration(older_than)
        except ValueError as exc:
            raise usage_error(f"--older-than: {exc}") from exc
        if batch_size < 1:
            raise usage_error("--batch-size must be at least 1.")
        with self.progress(label="pruned events") as progress:
            if progress.enabled:
                progress.total = events_prune(older_than=age, dry_run=True)

            def on_delete(rows: int) -> None:
                progress.add(rows)
                self.batch_line(progress, f"deleted {rows} events (total {progress.done})")

            with rows_watched(table=Event._meta.db_table, verb="DELETE", on_rows=on_delete):
                deleted = events_prune(older_than=age, batch_size=batch_size)
        self.summary(
            f"pruned {deleted} events older than {older_than}",
            happened=bool(deleted),
            deleted=deleted,
        )
