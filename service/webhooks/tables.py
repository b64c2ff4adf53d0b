"""Tables of webhooks: the endpoints operators register and the durable delivery queue/log."""

from __future__ import annotations

from piccolo.columns import (
    JSONB,
    BigInt,
    BigSerial,
    Boolean,
    Integer,
    Text,
    Timestamptz,
    Varchar,
)
from piccolo.constraints import Unique
from piccolo.table import Table


class Webhook(Table, tablename="webhooks"):
    """One endpoint of a tenant: where to POST, which event types, the signing secret, and
    the health that decides automatic disabling."""

    id = BigSerial(primary_key=True)
    tenant_id = Integer()
    key = Varchar(length=64)
    url = Varchar(length=2048)
    event_types = JSONB()  # list of patterns: "prize.won", "badge.*", "*"
    secret = Varchar(length=128)  # whsec_<base64>; symmetric, needed to sign every delivery
    description = Varchar(length=256, default="")
    enabled = Boolean(default=True)
    disabled_reason = Varchar(length=512, null=True, default=None)
    disabled_at = Timestamptz(null=True, default=None)
    consecutive_failures = Integer(default=0)
    failing_since = Timestamptz(null=True, default=None)
    created_at = Timestamptz()
    updated_at = Timestamptz()
    webhooks_unique_key = Unique(["tenant_id", "key"])


class WebhookDelivery(Table, tablename="webhook_deliveries"):
    """One event for one endpoint: the queue entry while pending, the log entry afterwards.

    ``id`` order is commit order (the subscriber inserts in outbox order), and deliveries of
    one (webhook, order_key) are sent strictly one after another in that order.
    """

    id = BigSerial(primary_key=True)
    tenant_id = Integer()
    webhook_id = BigInt()
    event_id = Varchar(length=64)  # the outbox event id, or a random one for test events
    msg_id = Varchar(length=64)  # the webhook-id header: the same on every attempt
    event_type = Varchar(length=64)
    member_id = BigInt(null=True, default=None)
    order_key = BigInt(default=0)  # member id, 0 for events of no member
    body = Text()  # the exact bytes signed and sent
    status = Varchar(length=16)  # pending, delivered, failed
    attempts = Integer(default=0)
    next_attempt_at = Timestamptz()
    lease_until = Timestamptz(null=True, default=None)
    last_attempt_at = Timestamptz(null=True, default=None)
    last_status_code = Integer(null=True, default=None)
    last_error = Varchar(length=512, null=True, default=None)
    last_latency_ms = Integer(null=True, default=None)
    delivered_at = Timestamptz(null=True, default=None)
    created_at = Timestamptz()
    webhook_deliveries_once = Unique(["webhook_id", "event_id"])
