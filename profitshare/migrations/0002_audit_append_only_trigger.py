"""On PostgreSQL, refuse UPDATE and DELETE of audit events at the database level too."""

from django.db import migrations

CREATE = """
CREATE OR REPLACE FUNCTION profitshare_audit_append_only() RETURNS trigger AS $$
BEGIN
    RAISE EXCEPTION 'audit events are append-only';
END;
$$ LANGUAGE plpgsql;
CREATE TRIGGER profitshare_auditevent_append_only
    BEFORE UPDATE OR DELETE ON profitshare_auditevent
    FOR EACH ROW EXECUTE FUNCTION profitshare_audit_append_only();
"""

DROP = """
DROP TRIGGER IF EXISTS profitshare_auditevent_append_only ON profitshare_auditevent;
DROP FUNCTION IF EXISTS profitshare_audit_append_only();
"""


def create(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(CREATE)


def drop(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(DROP)


class Migration(migrations.Migration):
    dependencies = [("profitshare", "0001_initial")]
    operations = [migrations.RunPython(create, drop)]
