"""The generic list of operator configs: one ``ConfigKind`` line per kind of config.

Each kind names its table and an SQL expression giving a row's state; ``list_configs`` pages
any of them the same way (newest first by id, opaque cursor, optional state filter). Adding a
kind (badges, webhooks, ...) is one entry in ``KINDS``.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

import asyncpg
import msgspec

from service.core import cursors
from service.core.context import Context


@dataclass(frozen=True, slots=True)
class ConfigKind:
    """``path``: the URL segment under /admin/v1; ``table``: its table (tenant_id, key, id,
    config); ``state_sql``: SQL giving the state (``$now`` is the request time);
    ``states``: the values ``state_sql`` can give (the filter accepts these)."""

    path: str
    table: str
    state_sql: str
    states: tuple[str, ...]
    version_sql: str = "version"
    updated_sql: str = "updated_at"
    name_sql: str = "COALESCE(config->>'name', config->>'title', '')"
    config_sql: str = "config"
    # SQL of the kind's saved versions (newest first; $1 tenant, $2 key). Default: the rows
    # the ``config_versions`` trigger keeps (operator migration) for ``path``.
    versions_sql: str | None = None
    label: str = ""
    # SQL giving a row's key (kinds with one config per tenant have a constant key).
    key_sql: str = "t.key"
    # Values of the state filter that are old names of a state (kept for API clients).
    aliases: tuple[tuple[str, str], ...] = ()

    def versions_query(self) -> str:
        return self.versions_sql or (
            "SELECT version, saved_at, config FROM config_versions WHERE tenant_id = $1 "
            f"AND kind = '{self.path}' AND key = $2 ORDER BY version DESC LIMIT 200"
        )

    def canonical_state(self, state: str) -> str:
        return dict(self.aliases).get(state, state)


# The wheel's status as GET /admin/v1/wheels/{key} and /v1/wheels/{key} answer it
# (draft, upcoming, open, ended); the stored ``state`` field is draft, live or ended.
_WHEEL_STATE = (
    "CASE WHEN config->>'state' = 'draft' THEN 'draft' "
    "WHEN config->>'state' = 'ended' OR (config->>'endsAt')::timestamptz <= $2 THEN 'ended' "
    "WHEN (config->>'startsAt')::timestamptz > $2 THEN 'upcoming' ELSE 'open' END"
)
# The PK's state as GET /admin/v1/pks/{key} answers it (parked is not shown here).
_PK_STATE = (
    "CASE WHEN settled_at IS NOT NULL THEN 'settled' WHEN $2 < starts_at THEN 'scheduled' "
    "WHEN $2 < ends_at THEN 'live' ELSE 'ended' END"
)
# The current ritual: its definitions are one row per version.
_RITUAL_TABLE = (
    "(SELECT DISTINCT ON (tenant_id) * FROM ritual_definitions ORDER BY tenant_id, version DESC)"
)
TEAM_CONFIG_SQL = (
    "jsonb_strip_nulls(jsonb_build_object('name', t.name, 'kind', t.kind, 'teamSet', "
    "t.team_set, 'captain', (SELECT m.external_id FROM members m WHERE m.id = t.captain_id), "
    "'capacity', t.capacity, 'open', t.open, 'joinCode', t.join_code))"
)
WEBHOOK_CONFIG_SQL = (
    "jsonb_build_object('url', t.url, 'eventTypes', t.event_types, "
    "'description', t.description, 'enabled', t.enabled, 'disabledReason', t.disabled_reason)"
)
_BOARD_STATE = (
    "CASE WHEN archived_at IS NOT NULL THEN 'archived' WHEN EXISTS (SELECT 1 FROM "
    "parked_definitions p WHERE p.feature = 'leaderboards' AND p.definition_id = t.id "
    "AND p.state = 'parked') THEN 'parked' ELSE 'active' END"
)

KINDS: dict[str, ConfigKind] = {
    k.path: k
    for k in (
        ConfigKind("checkin-campaigns", "checkin_campaigns", "state", ("draft", "live", "ended")),
        ConfigKind("challenges", "challenges", "state", ("draft", "live", "cancelled")),
        ConfigKind(
            "wheels",
            "wheels",
            _WHEEL_STATE,
            ("draft", "upcoming", "open", "ended"),
            aliases=(("live", "open"),),
            versions_sql="SELECT v.version, v.created_at AS saved_at, v.config "
            "FROM wheel_versions v JOIN wheels w ON w.id = v.wheel_id "
            "WHERE w.tenant_id = $1 AND w.key = $2 ORDER BY v.version DESC LIMIT 200",
        ),
        ConfigKind("leaderboards", "leaderboards", _BOARD_STATE, ("active", "parked", "archived")),
        ConfigKind("red-black", "red_black_boards", "'active'", ("active",)),
        ConfigKind(
            "rules", "event_rules", "COALESCE(config->>'state', 'live')", ("live", "paused")
        ),
        ConfigKind(
            "levels",
            "level_ladders",
            "'live'",
            ("live",),
            name_sql="'level ladder'",
            key_sql="'ladder'",
        ),
        ConfigKind(
            "badges",
            "badge_definitions",
            "CASE WHEN EXISTS (SELECT 1 FROM parked_definitions p WHERE p.feature = 'badges' "
            "AND p.definition_id = t.id AND p.state = 'parked') THEN 'parked' ELSE 'active' END",
            ("active", "parked"),
        ),
        # The signing secret never leaves the webhooks feature.
        ConfigKind(
            "webhooks",
            "webhooks",
            "CASE WHEN enabled THEN 'enabled' ELSE 'disabled' END",
            ("enabled", "disabled"),
            version_sql="(SELECT COALESCE(max(v.version), 0) FROM config_versions v "
            "WHERE v.tenant_id = t.tenant_id AND v.kind = 'webhooks' AND v.key = t.key)",
            name_sql="description",
            config_sql=WEBHOOK_CONFIG_SQL,
        ),
        ConfigKind(
            "rituals",
            _RITUAL_TABLE,
            "'live'",
            ("live",),
            name_sql="'entry ritual'",
            key_sql="'ritual'",
            updated_sql="created_at",
            versions_sql="SELECT version, created_at AS saved_at, config FROM ritual_definitions "
            "WHERE tenant_id = $1 AND $2 = 'ritual' ORDER BY version DESC LIMIT 200",
        ),
        ConfigKind(
            "teams",
            "teams",
            "'active'",
            ("active",),
            name_sql="t.name",
            config_sql=TEAM_CONFIG_SQL,
        ),
        ConfigKind("pks", "pks", _PK_STATE, ("scheduled", "live", "ended", "settled")),
    )
}


class ConfigItem(msgspec.Struct, rename="camel"):
    kind: str
    key: str
    name: str
    state: str
    version: int
    updated_at: datetime
    config: dict[str, Any]


class ConfigPage(msgspec.Struct, rename="camel"):
    items: list[ConfigItem]
    next_cursor: str | None


async def list_configs(
    ctx: Context,
    conn: asyncpg.Connection,
    tenant_id: int,
    kind: ConfigKind,
    *,
    state: str | None = None,
    cursor: str | None = None,
    limit: int = 50,
) -> ConfigPage:
    """One page of a tenant's configs of ``kind``, newest first. Errors: CURSOR_INVALID."""
    before = cursors.decode("c", cursor)
    sql = (
        f"SELECT * FROM (SELECT t.id, {kind.key_sql} AS key, {kind.name_sql} AS name, "
        f"{kind.state_sql} AS state, {kind.version_sql} AS version, "
        f"{kind.updated_sql} AS updated_at, {kind.config_sql} AS config FROM {kind.table} t "
        "WHERE t.tenant_id = $1 AND $2::timestamptz IS NOT NULL) s "
        "WHERE ($3::text IS NULL OR s.state = $3) AND ($4::bigint IS NULL OR s.id < $4) "
        "ORDER BY s.id DESC LIMIT $5"
    )
    rows = await conn.fetch(sql, tenant_id, ctx.clock.now(), state, before, limit + 1)
    more = len(rows) > limit
    rows = rows[:limit]
    return ConfigPage(
        [
            ConfigItem(
                kind.path,
                r["key"],
                r["name"] or "",
                r["state"],
                r["version"],
                r["updated_at"],
                r["config"] or {},
            )
            for r in rows
        ],
        cursors.encode("c", rows[-1]["id"]) if more and rows else None,
    )


async def count_by_state(
    ctx: Context, conn: asyncpg.Connection, tenant_id: int, kind: ConfigKind
) -> dict[str, int]:
    """{state: count} of a tenant's configs of ``kind`` (for the console's dashboard)."""
    rows = await conn.fetch(
        f"SELECT {kind.state_sql} AS state, count(*) AS n FROM {kind.table} t "
        "WHERE t.tenant_id = $1 AND $2::timestamptz IS NOT NULL GROUP BY 1",
        tenant_id,
        ctx.clock.now(),
    )
    return {r["state"]: r["n"] for r in rows}


async def get_item(
    ctx: Context, conn: asyncpg.Connection, tenant_id: int, kind: ConfigKind, key: str
) -> ConfigItem | None:
    """One config as a list item (after a write)."""
    row = await conn.fetchrow(
        f"SELECT {kind.key_sql} AS key, {kind.name_sql} AS name, {kind.state_sql} AS state, "
        f"{kind.version_sql} AS version, {kind.updated_sql} AS updated_at, "
        f"{kind.config_sql} AS config "
        f"FROM {kind.table} t WHERE t.tenant_id = $1 AND $2::timestamptz IS NOT NULL "
        f"AND {kind.key_sql} = $3",
        tenant_id,
        ctx.clock.now(),
        key,
    )
    if row is None:
        return None
    return ConfigItem(
        kind.path,
        row["key"],
        row["name"] or "",
        row["state"],
        row["version"],
        row["updated_at"],
        row["config"] or {},
    )


class VersionOut(msgspec.Struct, rename="camel"):
    version: int
    saved_at: datetime
    config: dict[str, Any]


class VersionList(msgspec.Struct, rename="camel"):
    kind: str
    key: str
    items: list[VersionOut]


async def versions(
    conn: asyncpg.Connection, tenant_id: int, kind: ConfigKind, key: str
) -> VersionList | None:
    """Every saved version of one config, newest first (None: no such config)."""
    rows = await conn.fetch(kind.versions_query(), tenant_id, key)
    if not rows:
        return None
    return VersionList(
        kind.path, key, [VersionOut(r["version"], r["saved_at"], r["config"] or {}) for r in rows]
    )
