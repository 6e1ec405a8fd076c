"""The intake wakes the webhook workers itself after its INSERT has committed (Redis, or a
NOTIFY of its own): a NOTIFY from a trigger inside the INSERT's transaction made PostgreSQL
commit the intake's transactions one at a time."""

from django.db import migrations

DROP_SQL = """
DROP TRIGGER IF EXISTS payments_delivery_notify ON payments_webhookdelivery;
DROP FUNCTION IF EXISTS confirma_delivery_notify();
"""
RESTORE_SQL = """
CREATE OR REPLACE FUNCTION confirma_delivery_notify() RETURNS trigger AS $$
BEGIN
    PERFORM pg_notify('confirma_deliveries', '');
    RETURN NULL;
END;
$$ LANGUAGE plpgsql;
CREATE TRIGGER payments_delivery_notify AFTER INSERT ON payments_webhookdelivery
    FOR EACH STATEMENT EXECUTE FUNCTION confirma_delivery_notify();
"""


def drop_trigger(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(DROP_SQL)


def restore_trigger(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(RESTORE_SQL)


class Migration(migrations.Migration):
    dependencies = [("payments", "0007_staff_partial_and_unmatched")]

    operations = [migrations.RunPython(drop_trigger, restore_trigger)]
