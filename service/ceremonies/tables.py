"""Tables of ceremonies: one row per honour per member, tenant template overrides, opt-outs."""

from __future__ import annotations

from piccolo.columns import JSONB, BigInt, BigSerial, Boolean, Integer, Timestamptz, Varchar
from piccolo.constraints import Unique
from piccolo.table import Table


class Ceremony(Table, tablename="ceremonies"):
    """An honour to play back to its member. ``dedup_key`` (the source event and member) makes
    it exist once however often the event is delivered. ``group_key`` joins the honours of one
    business event, so they play as one. The honour wall reads the same rows."""

    id = BigSerial(primary_key=True)
    tenant_id = Integer()
    member_id = BigInt()
    kind = Varchar(length=16)
    dedup_key = Varchar(length=80)
    group_key = Varchar(length=80)
    priority = Integer()
    facts = JSONB()
    assets = JSONB()
    created_at = Timestamptz()
    expires_at = Timestamptz()
    played_at = Timestamptz(null=True, default=None)
    wall_hidden = Boolean(default=False)
    ceremonies_unique = Unique(["tenant_id", "dedup_key"])


class CeremonySettings(Table, tablename="ceremony_settings"):
    """A tenant's overrides of one ceremony kind: templates per language and expiry."""

    id = BigSerial(primary_key=True)
    tenant_id = Integer()
    kind = Varchar(length=16)
    config = JSONB()
    updated_at = Timestamptz()
    ceremony_settings_unique = Unique(["tenant_id", "kind"])


class HonourWallPreference(Table, tablename="honour_wall_preferences"):
    """Members who opted out of public boards and the honour wall."""

    id = BigSerial(primary_key=True)
    tenant_id = Integer()
    member_id = BigInt()
    hidden = Boolean(default=True)
    updated_at = Timestamptz()
    honour_wall_preferences_unique = Unique(["tenant_id", "member_id"])
