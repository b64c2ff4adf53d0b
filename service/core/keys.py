"""The one place Redis keys are built: every key carries the deployment prefix and the tenant.

Layout: ``<prefix>:{t<tenant>}:<area>:<parts...>``. The ``{t<tenant>}`` hash tag keeps all keys
of one tenant on one Redis Cluster slot by default, so any script may use several keys of the
same tenant. Features with hot, large structures (a leaderboard) narrow the tag to
``{t<tenant>:<area>:<id>}`` so one tenant can spread over the cluster; a script then only combines
keys that share that narrower tag.
"""

from __future__ import annotations


class Keys:
    def __init__(self, prefix: str) -> None:
        self.prefix = prefix

    def tenant(self, tenant_id: int, *parts: object) -> str:
        """A key in the tenant-wide hash slot."""
        return ":".join((self.prefix, f"{{t{tenant_id}}}", *map(str, parts)))

    def tagged(self, tenant_id: int, tag: str, *parts: object) -> str:
        """A key whose hash tag is narrowed to ``tenant + tag``; keys sharing tag share a slot."""
        return ":".join((self.prefix, f"{{t{tenant_id}:{tag}}}", *map(str, parts)))

    def global_(self, *parts: object) -> str:
        """A key that belongs to no tenant (login replay by appId, deployment-wide limits)."""
        return ":".join((self.prefix, "g", *map(str, parts)))

    def pattern_for_tenant(self, tenant_id: int) -> list[str]:
        """SCAN patterns matching every key of a tenant (both tag forms)."""
        return [f"{self.prefix}:{{t{tenant_id}}}:*", f"{self.prefix}:{{t{tenant_id}:*"]

    def pattern_all(self) -> str:
        return f"{self.prefix}:*"
