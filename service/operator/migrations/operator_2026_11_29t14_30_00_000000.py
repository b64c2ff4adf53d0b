"""config_versions: every saved version of every operator config (what `.../versions` lists).

A trigger on each config table records the document as saved whenever it is created or
changes, whichever route wrote it (the feature's PUT, a PATCH, the console, a copy). Its
number is the row's own ``version`` where the table has one; its time the row's
``updated_at`` (the service's clock). The current rows are recorded once here.
Wheels (wheel_versions) and rituals (one row per version) keep their own history."""

from piccolo.apps.migrations.auto.migration_manager import MigrationManager

ID = "2026-11-29T14:30:00:000000"
VERSION = "1.38.0"
DESCRIPTION = "config_versions and the triggers that keep it"

TEAM_CONFIG = (
    "jsonb_strip_nulls(jsonb_build_object('name', t.name, 'kind', t.kind, 'teamSet', "
    "t.team_set, 'captain', (SELECT m.external_id FROM members m WHERE m.id = t.captain_id), "
    "'capacity', t.capacity, 'open', t.open, 'joinCode', t.join_code))"
)
WEBHOOK_CONFIG = (
    "jsonb_build_object('url', t.url, 'eventTypes', t.event_types, "
    "'description', t.description, 'enabled', t.enabled, 'disabledReason', t.disabled_reason)"
)

# kind, table, key SQL, config SQL, version SQL (NULL: the next number), time SQL, the
# columns whose change is a new version (hot counters elsewhere in a row never fire it).
TRACKED = (
    ("checkin-campaigns", "checkin_campaigns", "t.key", "t.config", "t.version", "config"),
    ("challenges", "challenges", "t.key", "t.config", "t.version", "config"),
    ("leaderboards", "leaderboards", "t.key", "t.config", "t.version", "config"),
    ("red-black", "red_black_boards", "t.key", "t.config", "t.version", "config"),
    ("rules", "event_rules", "t.key", "t.config", "t.version", "config"),
    ("levels", "level_ladders", "'ladder'", "t.config", "t.version", "config"),
    ("badges", "badge_definitions", "t.key", "t.config", "t.version", "config"),
    (
        "webhooks",
        "webhooks",
        "t.key",
        WEBHOOK_CONFIG,
        "NULL::int",
        "url, event_types, description, enabled, disabled_reason",
    ),
    (
        "teams",
        "teams",
        "t.key",
        TEAM_CONFIG,
        "t.version",
        "name, kind, team_set, captain_id, capacity, open, join_code",
    ),
    ("pks", "pks", "t.key", "t.config", "t.version", "config"),
)
AT = "t.updated_at"

FUNCTION = """
CREATE OR REPLACE FUNCTION engage_config_version() RETURNS trigger LANGUAGE plpgsql AS $fn$
DECLARE
  k text; doc jsonb; old_doc jsonb; v integer; at timestamptz;
BEGIN
  EXECUTE format('SELECT %s, %s, %s, %s FROM (SELECT ($1).*) t',
                 TG_ARGV[1], TG_ARGV[2], TG_ARGV[3], TG_ARGV[4])
    INTO k, doc, v, at USING NEW;
  IF TG_OP = 'UPDATE' THEN
    EXECUTE format('SELECT %s FROM (SELECT ($1).*) t', TG_ARGV[2]) INTO old_doc USING OLD;
    IF old_doc IS NOT DISTINCT FROM doc THEN
      RETURN NULL;
    END IF;
  END IF;
  IF v IS NULL THEN
    SELECT COALESCE(max(c.version), 0) + 1 INTO v FROM config_versions c
     WHERE c.tenant_id = NEW.tenant_id AND c.kind = TG_ARGV[0] AND c.key = k;
  END IF;
  INSERT INTO config_versions (tenant_id, kind, key, version, saved_at, config)
  VALUES (NEW.tenant_id, TG_ARGV[0], k, v, COALESCE(at, now()),
          COALESCE(doc, jsonb_build_object()))
  ON CONFLICT (tenant_id, kind, key, version)
  DO UPDATE SET saved_at = EXCLUDED.saved_at, config = EXCLUDED.config;
  RETURN NULL;
END
$fn$
"""


def _literal(sql: str) -> str:
    return "'" + sql.replace("'", "''") + "'"


async def forwards():
    manager = MigrationManager(migration_id=ID, app_name="operator", description=DESCRIPTION)

    async def run():
        from service.core.tables import Tenant

        await Tenant.raw(
            "CREATE TABLE IF NOT EXISTS config_versions ("
            "id BIGSERIAL PRIMARY KEY, tenant_id INTEGER NOT NULL, kind VARCHAR(32) NOT NULL, "
            "key VARCHAR(64) NOT NULL, version INTEGER NOT NULL, "
            "saved_at TIMESTAMPTZ NOT NULL, config JSONB NOT NULL, "
            "CONSTRAINT config_versions_key UNIQUE (tenant_id, kind, key, version))"
        )
        await Tenant.raw(FUNCTION)
        for kind, table, key_sql, config_sql, version_sql, columns in TRACKED:
            at_sql = AT
            args = ", ".join(_literal(x) for x in (kind, key_sql, config_sql, version_sql, at_sql))
            await Tenant.raw(f"DROP TRIGGER IF EXISTS {table}_versions ON {table}")
            await Tenant.raw(
                f"CREATE TRIGGER {table}_versions AFTER INSERT OR UPDATE OF {columns} ON {table} "
                f"FOR EACH ROW EXECUTE FUNCTION engage_config_version({args})"
            )
            await Tenant.raw(
                "INSERT INTO config_versions (tenant_id, kind, key, version, saved_at, config) "
                f"SELECT t.tenant_id, '{kind}', {key_sql}, COALESCE({version_sql}, 1), "
                f"{at_sql}, COALESCE({config_sql}, jsonb_build_object()) FROM {table} t "
                "ON CONFLICT DO NOTHING"
            )

    manager.add_raw(run)
    return manager
