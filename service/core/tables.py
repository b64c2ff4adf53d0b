"""Tables of the core: tenants, API keys, WeChat apps, the outbox and idempotency records."""

from __future__ import annotations

from piccolo.columns import (
    JSONB,
    UUID,
    Array,
    BigInt,
    BigSerial,
    Bytea,
    ForeignKey,
    Integer,
    Serial,
    SmallInt,
    Text,
    Timestamptz,
    Varchar,
)
from piccolo.constraints import Unique
from piccolo.table import Table


class Tenant(Table, tablename="tenants"):
    id = Serial(primary_key=True)
    slug = Varchar(length=64, unique=True)
    name = Varchar(length=200)
    timezone = Varchar(length=64, default="Asia/Shanghai")
    settings = JSONB(default="{}")
    created_at = Timestamptz()


class ApiKey(Table, tablename="api_keys"):
    """Operator keys: shown once, stored as a SHA-256 of the secret part."""

    id = Serial(primary_key=True)
    tenant_id = ForeignKey(Tenant, null=False)
    key_id = Varchar(length=32, unique=True)
    secret_hash = Varchar(length=64)
    name = Varchar(length=200, default="")
    scopes = Array(base_column=Varchar(length=64))
    created_at = Timestamptz()
    revoked_at = Timestamptz(null=True, default=None)
    last_used_at = Timestamptz(null=True, default=None)


class WechatApp(Table, tablename="wechat_apps"):
    """A mini-program appId belongs to exactly one tenant; login resolves the tenant from it."""

    id = Serial(primary_key=True)
    tenant_id = ForeignKey(Tenant, null=False)
    app_id = Varchar(length=64, unique=True)
    app_secret = Varchar(length=128, default="")
    verifier = Varchar(length=16, default="wechat")
    created_at = Timestamptz()


class OutboxEvent(Table, tablename="outbox"):
    """Domain events, written in the transaction of the change they describe.

    ``txid`` is the writing transaction's id; the dispatcher reads only events of transactions
    older than every transaction still running, so a late commit can never be skipped.
    """

    id = BigSerial(primary_key=True)
    txid = BigInt()
    tenant_id = Integer()
    event_id = UUID(unique=True)
    type = Varchar(length=64)
    member_id = BigInt(null=True, default=None)
    payload = JSONB(default="{}")
    occurred_at = Timestamptz()


class OutboxCursor(Table, tablename="outbox_cursors"):
    id = Serial(primary_key=True)
    subscriber = Varchar(length=64, unique=True)
    last_txid = BigInt(default=0)
    last_id = BigInt(default=0)
    updated_at = Timestamptz()


class OutboxDeadLetter(Table, tablename="outbox_dead_letters"):
    """Events a subscriber failed on too many times; kept for inspection and replay."""

    id = BigSerial(primary_key=True)
    subscriber = Varchar(length=64)
    outbox_id = BigInt()
    attempts = SmallInt()
    error = Text()
    created_at = Timestamptz()


class IdempotencyRecord(Table, tablename="idempotency_keys"):
    id = BigSerial(primary_key=True)
    tenant_id = Integer()
    caller = Varchar(length=80)
    key = Varchar(length=255)
    fingerprint = Varchar(length=64)
    status_code = SmallInt()
    body = Bytea()
    created_at = Timestamptz()
    unique_key = Unique(["tenant_id", "caller", "key"])


class ParkedDefinition(Table, tablename="parked_definitions"):
    """An operator definition (a board, later a badge or a team PK) that failed while applying
    events: its subscriber skips it (``state`` parked) so every other definition keeps
    counting, until a correction sets it ``resuming`` and the dispatcher replays the events it
    missed, from outbox position (``from_txid``, ``from_id``), then deletes the row."""

    feature = Varchar(length=32)
    definition_id = BigInt()
    tenant_id = Integer()
    state = Varchar(length=16, default="parked")
    reason = Text()
    parked_at = Timestamptz()
    from_txid = BigInt()
    from_id = BigInt()

    parked_definitions_key = Unique(["feature", "definition_id"])
