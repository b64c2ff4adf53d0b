"""Tables of members and their external identities."""

from __future__ import annotations

from piccolo.columns import BigInt, BigSerial, ForeignKey, Timestamptz, Varchar
from piccolo.constraints import Unique
from piccolo.table import Table

from service.core.tables import Tenant


class Member(Table, tablename="members"):
    id = BigSerial(primary_key=True)
    tenant_id = ForeignKey(Tenant, null=False)
    # The brand's own id for the member (its user id); unique per tenant when present.
    external_id = Varchar(length=128, null=True, default=None)
    nickname = Varchar(length=64, default="")
    avatar_url = Varchar(length=512, default="")
    # Sequential per tenant, given at the end of the entry ritual ("you are member No. 1024").
    member_no = BigInt(null=True, default=None)
    created_at = Timestamptz()
    # Set when the member's personal data was erased (privacy): the row stays for the ledger.
    erased_at = Timestamptz(null=True, default=None)
    unique_external = Unique(["tenant_id", "external_id"])
    unique_member_no = Unique(["tenant_id", "member_no"])


class MemberIdentity(Table, tablename="member_identities"):
    """How a member logs in: a WeChat openid under an appId (and the unionid when known)."""

    id = BigSerial(primary_key=True)
    tenant_id = ForeignKey(Tenant, null=False)
    member_id = ForeignKey(Member, null=False)
    provider = Varchar(length=16)
    app_id = Varchar(length=64)
    subject = Varchar(length=128)
    unionid = Varchar(length=128, null=True, default=None)
    created_at = Timestamptz()
    unique_subject = Unique(["tenant_id", "provider", "app_id", "subject"])
