"""What Confirma's management commands share.

- **Exit statuses, one meaning everywhere:** 0 the run was fine, 1 it found problems
  (gaps, failures, a backlog), 2 it could not run — bad usage (options, settings) or the
  database or Redis unreachable. `ConfirmaCommand` turns a database or Redis error, and a
  bad option given through `call_command`, into status 2; commands raise `usage_error()`
  for their own checks and `problems_found()` (or exit 1) for findings.
- **Quiet scheduled runs:** run by `run_periodic` (or with `-v 0`, for cron) a command
  prints nothing; `summary()` logs what the run did through the logging configuration
  (JSON in production), only when something happened. Whatever a command writes to stdout
  anyway is logged too: at DEBUG after a run that went well, at WARNING after one that
  found problems or could not run. Every record logged during a quiet run — the
  command's and the services' it calls — carries the job's name in `job`.
- **Progress on a terminal:** `Progress` redraws one line in place while a long command
  works, only when stdout is a terminal; `rows_watched()` reports the rows each batch of a
  service changed, without the service having to know.
"""

import argparse
import collections
import contextvars
import io
import logging
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import DatabaseError, connection
from redis.exceptions import RedisError

EXIT_OK = 0
EXIT_PROBLEMS = 1
EXIT_UNUSABLE = 2

# Every scheduled run reports here, with the job's name in `job`.
jobs_logger = logging.getLogger("confirma.jobs")


_current_job: contextvars.ContextVar[str | None] = contextvars.ContextVar(
    "confirma_job", default=None
)
_job_field_installed = False


def _install_job_field() -> None:
    """Give every log record made while a job runs (in its thread) a `job` field."""
    global _job_field_installed
    if _job_field_installed:
        return
    previous = logging.getLogRecordFactory()

    def factory(*args, **kwargs):
        record = previous(*args, **kwargs)
        job = _current_job.get()
        if job is not None:
            record.job = job
        return record

    logging.setLogRecordFactory(factory)
    _job_field_installed = True


@contextmanager
def job_context(name: str) -> Iterator[None]:
    """Within the block, this thread's log records carry `job=name`."""
    _install_job_field()
    token = _current_job.set(name)
    try:
        yield
    finally:
        _current_job.reset(token)


def usage_error(message: str) -> CommandError:
    """The error for a bad option or setting: exit status 2, nothing done."""
    return CommandError(message, returncode=EXIT_UNUSABLE)


def problems_found(message: str) -> CommandError:
    """The error for a run that worked and found problems: exit status 1."""
    return CommandError(message, returncode=EXIT_PROBLEMS)


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0][:200] if text else ""


class _Parser(CommandParser):
    """A bad option is bad usage (status 2) whether the command came from the command line
    (argparse already exits 2) or from `call_command` (Django would say 1)."""

    def error(self, message):
        if self.called_from_command_line:
            super().error(message)
        raise CommandError(f"Error: {message}", returncode=EXIT_UNUSABLE)


class ConfirmaCommand(BaseCommand):
    """Base of Confirma's commands: the exit statuses, the quiet mode and `summary()`."""

    # Set by run_periodic: the name of the periodic job this run is.
    stealth_options = ("job",)

    def create_parser(self, prog_name, subcommand, **kwargs):
        parser = super().create_parser(prog_name, subcommand, **kwargs)
        parsers = [parser]
        while parsers:
            current = parsers.pop()
            current.__class__ = _Parser  # the same parser; only `error()` differs
            for action in current._actions:
                if isinstance(action, argparse._SubParsersAction):
                    parsers.extend(action.choices.values())
        return parser

    @property
    def name(self) -> str:
        """The command's name, as typed after `manage.py`."""
        return type(self).__module__.rsplit(".", 1)[-1]

    def execute(self, *args, **options):
        self.job = options.get("job") or None
        self.verbosity = options.get("verbosity", 1)
        if not self.quiet:
            return self._execute(*args, **options)
        output = _LastLines()
        went_well = False
        with job_context(self.job_name):
            try:
                result = self._execute(*args, **{**options, "stdout": output})
                went_well = True
                return result
            except SystemExit as exc:
                went_well = exc.code in (0, None)
                raise
            finally:
                if text := output.text():
                    level = logging.DEBUG if went_well else logging.WARNING
                    jobs_logger.log(level, "%s: %s", self.job_name, text)

    def _execute(self, *args, **options):
        try:
            return super().execute(*args, **options)
        except DatabaseError as exc:
            raise CommandError(
                f"{self.name} could not run: the database is unreachable or not ready "
                f"({exc.__class__.__name__}: {_first_line(exc)})",
                returncode=EXIT_UNUSABLE,
            ) from exc
        except RedisError as exc:
            raise CommandError(
                f"{self.name} could not run: Redis is unreachable ({exc.__class__.__name__})",
                returncode=EXIT_UNUSABLE,
            ) from exc

    @property
    def quiet(self) -> bool:
        """A scheduled run (run_periodic, or `-v 0`): report through logging only."""
        return bool(getattr(self, "job", None)) or getattr(self, "verbosity", 1) == 0

    @property
    def job_name(self) -> str:
        return getattr(self, "job", None) or self.name

    def summary(self, message: str, *, happened: bool, level: int = logging.INFO, **counts):
        """Tell what this run did: printed for a person; in a quiet run logged under the
        job's name with `counts`, and only when something happened (or at WARNING and
        above, always)."""
        if not self.quiet:
            self.stdout.write(message)
        elif happened or level >= logging.WARNING:
            with job_context(self.job_name):
                jobs_logger.log(level, "%s: %s", self.job_name, message, extra={"counts": counts})

    def batch_line(self, progress: "Progress", message: str) -> None:
        """A line per batch, shown at `-v 2` and more (never in a quiet run)."""
        if not self.quiet and self.verbosity >= 2:
            progress.line(message)

    def progress(self, *, label: str, total: int | None = None) -> "Progress":
        """A progress line on stdout, drawn only when stdout is a terminal (never in a
        quiet run); per-item lines go through `Progress.line()` so that both fit."""
        return Progress(self.stdout, label=label, total=total, enabled=not self.quiet)


class _LastLines(io.TextIOBase):
    """Where a quiet run's stdout goes: the last lines written, kept for the log (a
    long-running worker never fills memory with them)."""

    def __init__(self, keep: int = 200) -> None:
        super().__init__()
        self._lines: collections.deque[str] = collections.deque(maxlen=keep)
        self._partial = ""

    def writable(self) -> bool:
        return True

    def write(self, text: str) -> int:
        *complete, self._partial = (self._partial + text).split("\n")
        self._lines.extend(line for line in complete if line.strip())
        return len(text)

    def text(self) -> str:
        return "\n".join([*self._lines, self._partial] if self._partial.strip() else self._lines)


class Progress:
    """One line redrawn in place — "label: 12000/50000 (24 %), 3100/s" — at most every
    `every` seconds, on a stream that is a terminal; nothing otherwise."""

    def __init__(
        self, stream, *, label: str, total: int | None, enabled: bool = True, every: float = 0.2
    ) -> None:
        self.stream = stream
        self.label = label
        self.total = total
        self.done = 0
        self.every = every
        isatty = getattr(stream, "isatty", None)
        self.enabled = enabled and callable(isatty) and bool(isatty())
        self._started = time.monotonic()
        self._drawn_at = 0.0
        self._width = 0

    def add(self, count: int) -> None:
        self.done += count
        if self.enabled and time.monotonic() - self._drawn_at >= self.every:
            self._draw()

    def line(self, text: str) -> None:
        """Write a whole line (a per-batch report) above the progress line."""
        self._erase()
        self.stream.write(text)
        if self.enabled and self._drawn_at:
            self._draw()

    def close(self) -> None:
        """Draw the final count, then clear the line for what the command prints next."""
        if self.enabled and self._drawn_at:
            self._draw()
            self._erase()

    def __enter__(self) -> "Progress":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def text(self) -> str:
        elapsed = max(time.monotonic() - self._started, 1e-6)
        count = f"{self.done}/{self.total}" if self.total is not None else f"{self.done}"
        percent = ""
        if self.total:
            percent = f" ({min(100, self.done * 100 // self.total)} %)"
        return f"{self.label}: {count}{percent}, {self.done / elapsed:.0f}/s"

    def _draw(self) -> None:
        text = self.text()
        pad = " " * max(0, self._width - len(text))
        self.stream.write(f"\r{text}{pad}", ending="")
        self.stream.flush()
        self._width = len(text)
        self._drawn_at = time.monotonic()

    def _erase(self) -> None:
        if self.enabled and self._width:
            self.stream.write("\r" + " " * self._width + "\r", ending="")
            self._width = 0


@contextmanager
def rows_watched(*, table: str, verb: str, on_rows: Callable[[int], None]) -> Iterator[None]:
    """Call `on_rows(n)` after every `verb` ("DELETE" or "UPDATE") statement on `table`
    that this thread runs on the default database, with the rows it changed.

    Lets a command show the progress of a batched service without the service knowing:
    each batch of `sessions_expire_due` is one UPDATE; a batch of a prune is one DELETE,
    or several of at most 100 rows when related rows must be updated first.
    """
    table_name = connection.ops.quote_name(table)
    # Compared with the statements run, never executed.
    prefix = f"DELETE FROM {table_name}" if verb == "DELETE" else f"{verb} {table_name}"  # noqa: S608

    def wrapper(execute, sql, params, many, context):
        result = execute(sql, params, many, context)
        if isinstance(sql, str) and sql.startswith(prefix):
            rows = context["cursor"].rowcount
            if rows and rows > 0:
                on_rows(rows)
        return result

    with connection.execute_wrapper(wrapper):
        yield
