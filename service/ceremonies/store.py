"""Redis side of ceremonies: the honour wall's page cache (a hash per tenant, generations)."""

from __future__ import annotations

from service.core.context import Context

# Every change to what the wall shows (a new honour, an opt-out, a hidden entry) starts a new
# generation, so a cached page is never stale; the TTL only bounds memory. Pages and the
# generation share it, so a bump is never forgotten while a page of its generation exists.
WALL_TTL_S = 3600


def wall_key(ctx: Context, tenant_id: int) -> str:
    return ctx.keys.tenant(tenant_id, "wall", "cache")


async def wall_get(ctx: Context, tenant_id: int, field: str) -> tuple[str, bytes | None]:
    """(generation, cached page or None) in one round trip."""
    g, page = await ctx.scripts.wall_cache_get(keys=[wall_key(ctx, tenant_id)], args=[field])
    return (g.decode() if isinstance(g, bytes) else str(g)), page or None


async def wall_put(ctx: Context, tenant_id: int, gen: str, field: str, page: bytes) -> bool:
    return bool(
        await ctx.scripts.wall_cache_put(
            keys=[wall_key(ctx, tenant_id)], args=[gen, field, page, WALL_TTL_S]
        )
    )


async def wall_bump(ctx: Context, tenant_id: int) -> None:
    await ctx.scripts.wall_cache_bump(keys=[wall_key(ctx, tenant_id)], args=[WALL_TTL_S])
