"""Tables of the entry ritual, member numbers and invitations."""

from __future__ import annotations

from piccolo.columns import JSONB, BigInt, BigSerial, Date, Integer, Timestamptz, Varchar
from piccolo.constraints import Unique
from piccolo.table import Table


class RitualDefinition(Table, tablename="ritual_definitions"):
    """One row per version of a tenant's ritual; the highest version is the current one.
    ``covenant_version`` is the covenant text's own version (re-asking depends on it)."""

    id = BigSerial(primary_key=True)
    tenant_id = Integer()
    version = Integer()
    covenant_version = Varchar(length=32, null=True, default=None)
    config = JSONB()
    created_at = Timestamptz()
    ritual_definitions_unique = Unique(["tenant_id", "version"])


class RitualProgress(Table, tablename="ritual_progress"):
    """A member's way through the ritual: steps done (by key, with when and the version of
    the definition), the covenant version accepted, personal data given in the profile step
    (erasable), consents, and when the ritual was completed (once, never undone)."""

    id = BigSerial(primary_key=True)
    tenant_id = Integer()
    member_id = BigInt()
    steps = JSONB()
    covenant_version = Varchar(length=32, null=True, default=None)
    profile = JSONB()
    consents = JSONB()
    started_version = Integer()
    completed_version = Integer(null=True, default=None)
    completed_at = Timestamptz(null=True, default=None)
    updated_at = Timestamptz()
    ritual_progress_unique = Unique(["tenant_id", "member_id"])


class MemberNumberCounter(Table, tablename="member_number_counters"):
    """The next member number of a tenant. Locked by the transaction that hands one out, so
    numbers are sequential with no gap and no duplicate however many members finish at once."""

    id = BigSerial(primary_key=True)
    tenant_id = Integer(unique=True)
    next_no = BigInt()
    updated_at = Timestamptz()


class MemberNumberReservation(Table, tablename="member_number_reservations"):
    """Numbers the sequence skips (founders 1-100, 8888), assignable only by hand."""

    id = BigSerial(primary_key=True)
    tenant_id = Integer()
    first_no = BigInt()
    last_no = BigInt()
    note = Varchar(length=200, default="")
    created_at = Timestamptz()


class InviteCode(Table, tablename="invite_codes"):
    """Each member's invite code (usable as a mini-program ``scene``)."""

    id = BigSerial(primary_key=True)
    tenant_id = Integer()
    member_id = BigInt()
    code = Varchar(length=16)
    created_at = Timestamptz()
    invite_codes_member = Unique(["tenant_id", "member_id"])
    invite_codes_code = Unique(["tenant_id", "code"])


class Referral(Table, tablename="referrals"):
    """Who invited whom (one inviter per invitee, the first valid code). ``state``: pending
    until the invitee joins, then rewarded (``referral.joined`` emitted) or capped (the
    inviter's daily limit was reached: recorded, not rewarded)."""

    id = BigSerial(primary_key=True)
    tenant_id = Integer()
    invitee_id = BigInt()
    inviter_id = BigInt()
    code = Varchar(length=16)
    via = Varchar(length=16)
    state = Varchar(length=16)
    created_at = Timestamptz()
    joined_at = Timestamptz(null=True, default=None)
    # What the event rules credited the inviter for this referral (shown to the inviter).
    inviter_points = Integer(default=0)
    inviter_growth = Integer(default=0)
    referrals_invitee = Unique(["tenant_id", "invitee_id"])


class ReferralDaily(Table, tablename="referral_daily"):
    """Rewarded referrals per inviter per local day (the per-inviter daily limit)."""

    id = BigSerial(primary_key=True)
    tenant_id = Integer()
    inviter_id = BigInt()
    day = Date()
    rewarded = Integer()
    referral_daily_unique = Unique(["tenant_id", "inviter_id", "day"])


class MemberErasure(Table, tablename="member_erasures"):
    """The audit of erasures (PIPL): who erased which member, when and why."""

    id = BigSerial(primary_key=True)
    tenant_id = Integer()
    member_id = BigInt()
    actor = Varchar(length=64)
    reason = Varchar(length=500)
    erased_at = Timestamptz()
