"""Tables of reminders: the tenant's config, members' one-time grants, and reminders sent."""

from __future__ import annotations

from piccolo.columns import JSONB, BigInt, BigSerial, Integer, Timestamptz, Varchar
from piccolo.constraints import Unique
from piccolo.table import Table


class ReminderConfig(Table, tablename="reminder_configs"):
    """One per tenant: the sender, the template of each kind, quiet hours, trigger times."""

    id = BigSerial(primary_key=True)
    tenant_id = Integer(unique=True)
    config = JSONB()
    updated_at = Timestamptz()


class ReminderGrant(Table, tablename="reminder_grants"):
    """One "allow" a member tapped for one template: it allows exactly one message."""

    id = BigSerial(primary_key=True)
    tenant_id = Integer()
    member_id = BigInt()
    template_id = Varchar(length=128)
    granted_at = Timestamptz()
    used_at = Timestamptz(null=True, default=None)
    reminder_id = BigInt(null=True, default=None)  # the reminder that consumed it


class Reminder(Table, tablename="reminders"):
    """One reminder for one occasion: unique, so a member never gets it twice."""

    id = BigSerial(primary_key=True)
    tenant_id = Integer()
    member_id = BigInt()
    kind = Varchar(length=32)
    occasion = Varchar(length=128)
    values = JSONB()  # the kind's variables (title, deadline, points ...)
    status = Varchar(length=16)  # pending, sent, no_grant, refused, failed
    grant_id = BigInt(null=True, default=None)
    attempts = Integer(default=0)
    not_before = Timestamptz()
    lease_until = Timestamptz(null=True, default=None)
    last_error = Varchar(length=512, null=True, default=None)
    sent_at = Timestamptz(null=True, default=None)
    created_at = Timestamptz()
    reminders_once = Unique(["tenant_id", "member_id", "kind", "occasion"])
