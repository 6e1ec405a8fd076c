"""Real database faults for tests: a trigger that makes chosen writes fail in the database
itself, the way a broken constraint, a full disk or a bad migration would."""

import contextlib

from django.db import connection


@contextlib.contextmanager
def updates_fail(table: str, when: str, message: str = "injected fault"):
    """While inside, every UPDATE of `table` whose new row matches `when` (an SQL condition
    on NEW, e.g. "NEW.status = 'paid'") fails in the database. PostgreSQL and SQLite."""
    name = f"confirma_fault_{table}"
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute(
                f"CREATE FUNCTION {name}() RETURNS trigger AS $$ "
                f"BEGIN RAISE EXCEPTION '{message}'; END $$ LANGUAGE plpgsql"
            )
            cursor.execute(
                f"CREATE TRIGGER {name} BEFORE UPDATE ON {table} FOR EACH ROW "
                f"WHEN ({when}) EXECUTE FUNCTION {name}()"
            )
        else:
            cursor.execute(
                f"CREATE TRIGGER {name} BEFORE UPDATE ON {table} FOR EACH ROW WHEN {when} "
                f"BEGIN SELECT RAISE(ABORT, '{message}'); END"
            )
    try:
        yield
    finally:
        with connection.cursor() as cursor:
            if connection.vendor == "postgresql":
                cursor.execute(f"DROP TRIGGER {name} ON {table}")
                cursor.execute(f"DROP FUNCTION {name}()")
            else:
                cursor.execute(f"DROP TRIGGER {name}")
