"""Ceremonies and the honour wall over HTTP: the queue's lifecycle, grouping, expiry, owners
only, templates, redelivery, opt-outs and hidden entries."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import pytest

from service.ceremonies import service as ceremonies
from service.core import outbox
from tests.badge_helpers import count, deliver, put_badge
from tests.test_foundation_api import assert_error

pytestmark = pytest.mark.asyncio


async def honour(
    ctx, tenant_id: int, member_id: int | None, type_: str, **payload: Any
) -> uuid.UUID:  # type: ignore[no-untyped-def]
    async with ctx.db.transaction() as conn:
        return await outbox.emit(
            conn,
            tenant_id=tenant_id,
            type=type_,
            member_id=member_id,
            payload=payload,
            occurred_at=ctx.clock.now(),
        )


def badge_payload(key: str, source: str | None = None, tier: str = "") -> dict[str, Any]:
    return {
        "key": key,
        "name": key.upper(),
        "icon": f"{key}.png",
        "tier": tier,
        "sourceEventId": source,
    }


async def pending(client, headers, **params):  # type: ignore[no-untyped-def]
    r = await client.get("/v1/ceremonies/pending", headers=headers, params=params)
    assert r.status_code == 200, r.text
    return r.json()


async def test_queue_lifecycle_pending_ack_replay_and_owner_only(ctx, client, clock, tenant):
    me, headers = await tenant.member("alice")
    _, other = await tenant.member("bob")
    await honour(ctx, tenant.id, me, "level.up", **{"from": 0, "to": 1, "toName": "银卡"})
    await honour(ctx, tenant.id, me, "badge.earned", **badge_payload("first"))
    await honour(ctx, tenant.id, me, "wheel.spun", wheelKey="w")  # not an honour
    await deliver(ctx)
    body = await pending(client, headers)
    assert [g["ceremonies"][0]["kind"] for g in body["groups"]] == ["level", "badge"]
    assert body["more"] == 0
    level = body["groups"][0]["ceremonies"][0]
    assert level["headline"] == "升级啦！你已成为银卡"
    assert level["assets"]["animation"] == "level-up"
    # N at most, the rest counted.
    one = await pending(client, headers, limit=1)
    assert len(one["groups"]) == 1 and one["more"] == 1
    assert_error(
        await client.get("/v1/ceremonies/pending", headers=headers, params={"limit": 0}),
        422,
        "VALIDATION_FAILED",
    )
    # Someone else's ceremony: 404 for ack and replay, nothing changes.
    assert_error(
        await client.post(f"/v1/ceremonies/{level['id']}/ack", headers=other),
        404,
        "CEREMONY_NOT_FOUND",
    )
    assert_error(
        await client.get(f"/v1/ceremonies/{level['id']}", headers=other), 404, "CEREMONY_NOT_FOUND"
    )
    # Acked many times at once: played once, one ceremony.played event.
    acks = await asyncio.gather(
        *[client.post(f"/v1/ceremonies/{level['id']}/ack", headers=headers) for _ in range(10)]
    )
    assert all(a.status_code in (200, 409) for a in acks)
    assert sum(1 for a in acks if a.status_code == 200 and not a.json()["alreadyPlayed"]) == 1
    assert (
        await count(
            ctx,
            "SELECT count(*) FROM outbox WHERE tenant_id = $1 AND type = 'ceremony.played'",
            tenant.id,
        )
        == 1
    )
    body = await pending(client, headers)
    assert [g["ceremonies"][0]["kind"] for g in body["groups"]] == ["badge"]
    played = (await client.get("/v1/ceremonies/played", headers=headers)).json()
    assert [c["id"] for c in played["items"]] == [level["id"]]
    replay = (await client.get(f"/v1/ceremonies/{level['id']}", headers=headers)).json()
    assert replay["playedAt"] is not None and replay["headline"] == level["headline"]
    # Redelivery of every event creates nothing new.
    async with ctx.db.connection() as conn:
        rows = await conn.fetch(
            "SELECT id, event_id, tenant_id, type, member_id, payload, occurred_at FROM outbox "
            "WHERE tenant_id = $1",
            tenant.id,
        )
    await ceremonies.on_events(ctx, [outbox.Event(*r) for r in rows])
    assert await count(ctx, "SELECT count(*) FROM ceremonies WHERE tenant_id = $1", tenant.id) == 2


async def test_ten_honours_of_one_event_play_as_one_group(ctx, client, tenant):
    me, headers = await tenant.member("lucky")
    source = str(uuid.uuid4())
    for i in range(10):
        await honour(
            ctx,
            tenant.id,
            me,
            "badge.earned",
            **badge_payload(f"b{i}", source, "gold" if i == 7 else ""),
        )
    await honour(ctx, tenant.id, me, "title.gained", title="王者", sourceEventId=source)
    await honour(ctx, tenant.id, me, "challenge.won", challenge="run")
    await deliver(ctx)
    body = await pending(client, headers, limit=1)
    [group] = body["groups"]
    assert len(group["ceremonies"]) == 11
    assert group["ceremonies"][0]["facts"]["badge"] == "b7"  # gold first inside the group
    assert body["more"] == 1  # the challenge, in its own group


async def test_stale_ceremonies_expire_by_kind(ctx, client, clock, tenant):
    me, headers = await tenant.member("late")
    r = await client.put(
        "/admin/v1/ceremonies/challenge", json={"expiryDays": 2}, headers=tenant.admin
    )
    assert r.status_code == 200, r.text
    await honour(ctx, tenant.id, me, "challenge.won", challenge="run")
    await honour(ctx, tenant.id, me, "badge.earned", **badge_payload("slow"))
    await deliver(ctx)
    assert len((await pending(client, headers))["groups"]) == 2
    clock.advance(days=3)
    _, headers = await tenant.member("late")
    body = await pending(client, headers)
    assert [g["ceremonies"][0]["kind"] for g in body["groups"]] == ["badge"]  # 30 days
    clock.advance(days=30)
    _, headers = await tenant.member("late")
    assert (await pending(client, headers))["groups"] == []


async def test_templates_default_english_and_tenant_override(ctx, client, tenant):
    me, headers = await tenant.member("reader")
    await honour(ctx, tenant.id, me, "badge.earned", **badge_payload("owl"))
    await deliver(ctx)
    zh = (await pending(client, headers))["groups"][0]["ceremonies"][0]
    en = (await pending(client, {**headers, "Accept-Language": "en-US,en;q=0.9"}))["groups"][0][
        "ceremonies"
    ][0]
    assert zh["headline"] == "恭喜获得「OWL」徽章"
    assert en["headline"] == "You earned the OWL badge"
    bad = await client.put(
        "/admin/v1/ceremonies/badge",
        json={"zh": {"headline": "{nope} {rank}"}, "en": {"headline": "{name", "copy": ""}},
        headers=tenant.admin,
    )
    err = assert_error(bad, 422, "VALIDATION_FAILED")
    assert {p["path"] for p in err["details"]["problems"]} == {"zh.headline", "en.headline"}
    assert len(err["details"]["problems"]) == 3
    assert_error(
        await client.put("/admin/v1/ceremonies/party", json={}, headers=tenant.admin),
        404,
        "CEREMONY_KIND_UNKNOWN",
    )
    r = await client.put(
        "/admin/v1/ceremonies/badge",
        json={"zh": {"headline": "新徽章：{name}", "copy": "棒"}},
        headers=tenant.admin,
    )
    assert r.status_code == 200, r.text
    zh = (await pending(client, headers))["groups"][0]["ceremonies"][0]
    assert zh["headline"] == "新徽章：OWL" and zh["copy"] == "棒"


async def test_opted_out_members_never_appear_on_the_honour_wall(ctx, client, tenant, other_tenant):
    shy, shy_headers = await tenant.member("shy")
    loud, loud_headers = await tenant.member("loud")
    await client.patch("/v1/me", headers=loud_headers, json={"nickname": "Alice"})
    await honour(ctx, tenant.id, shy, "badge.earned", **badge_payload("a"))
    await honour(ctx, tenant.id, loud, "badge.earned", **badge_payload("b"))
    await deliver(ctx)
    wall = (await client.get("/v1/honour-wall", headers=loud_headers)).json()["items"]
    assert len(wall) == 2
    assert wall[0]["member"]["maskedNickname"] == "A***e"
    # Opt out: gone at once (the cached page is dropped), and stays gone for new honours.
    r = await client.put("/v1/me/honour-wall", headers=shy_headers, json={"hidden": True})
    assert r.status_code == 200, r.text
    for _ in range(3):
        await honour(ctx, tenant.id, shy, "level.up", **{"from": 0, "to": 1, "toName": "银"})
    await deliver(ctx)
    for kind in (None, "badge", "level"):
        params = {"kind": kind} if kind else {}
        items = (await client.get("/v1/honour-wall", headers=loud_headers, params=params)).json()[
            "items"
        ]
        assert all(i["member"]["maskedNickname"] != "会员" or False for i in items)
        ids = await _members_of(ctx, [i["id"] for i in items])
        assert shy not in ids
    # An operator hides an entry; another tenant sees none of it.
    entry = (await client.get("/v1/honour-wall", headers=loud_headers)).json()["items"][0]
    r = await client.put(
        f"/admin/v1/honour-wall/{entry['id']}",
        json={"hidden": True, "reason": "spam"},
        headers=tenant.admin,
    )
    assert r.status_code == 200, r.text
    assert (await client.get("/v1/honour-wall", headers=loud_headers)).json()["items"] == []
    assert_error(
        await client.put(
            f"/admin/v1/honour-wall/{entry['id']}",
            json={"hidden": False},
            headers=other_tenant.admin,
        ),
        404,
        "HONOUR_NOT_FOUND",
    )
    _, stranger = await other_tenant.member("stranger")
    assert (await client.get("/v1/honour-wall", headers=stranger)).json()["items"] == []


async def _members_of(ctx, ids: list[int]) -> set[int]:  # type: ignore[no-untyped-def]
    async with ctx.db.connection() as conn:
        rows = await conn.fetch(
            "SELECT member_id FROM ceremonies WHERE id = ANY($1::bigint[])", ids
        )
    return {r["member_id"] for r in rows}


async def test_honour_wall_pages_with_a_cursor_and_filters_by_kind(ctx, client, tenant):
    me, headers = await tenant.member("busy")
    for i in range(7):
        await honour(ctx, tenant.id, me, "badge.earned", **badge_payload(f"p{i}"))
    await honour(ctx, tenant.id, me, "challenge.won", challenge="c")
    await deliver(ctx)
    seen: list[int] = []
    cursor = None
    while True:
        params: dict[str, Any] = {"limit": 3, "kind": "badge"}
        if cursor:
            params["cursor"] = cursor
        page = (await client.get("/v1/honour-wall", headers=headers, params=params)).json()
        seen += [i["id"] for i in page["items"]]
        assert all(i["kind"] == "badge" for i in page["items"])
        cursor = page["nextCursor"]
        if not cursor:
            break
    assert len(seen) == 7 and seen == sorted(seen, reverse=True)
    assert_error(
        await client.get("/v1/honour-wall", headers=headers, params={"cursor": "zzz"}),
        422,
        "VALIDATION_FAILED",
    )


async def test_red_list_placement_and_grand_prize_become_ceremonies(ctx, client, tenant):
    a, ha = await tenant.member("red1")
    b, hb = await tenant.member("red2")
    await honour(
        ctx,
        tenant.id,
        None,
        "red-black.published",
        key="rb",
        boardKey="weekly",
        period="2026-W48",
        revision=1,
        red=[b, a],
        black=[],
    )
    await honour(ctx, tenant.id, a, "prize.won", kind="physical", name="iPhone", prizeKey="phone")
    await honour(ctx, tenant.id, a, "prize.won", kind="points", name="10 积分", prizeKey="p10")
    await deliver(ctx)
    ga = (await pending(client, ha))["groups"]
    assert [g["ceremonies"][0]["kind"] for g in ga] == ["grandPrize", "redList"]
    assert ga[1]["ceremonies"][0]["facts"]["rank"] == 2
    gb = (await pending(client, hb))["groups"]
    assert gb[0]["ceremonies"][0]["headline"] == "荣登红榜第 1 名"


async def test_badge_earned_by_a_member_joining(ctx, client, tenant):
    await put_badge(client, tenant, "welcome", name="新人", criteria=[{"kind": "memberJoined"}])
    _, headers = await tenant.member("fresh")
    await deliver(ctx)
    body = await pending(client, headers)
    assert [c["facts"]["badge"] for g in body["groups"] for c in g["ceremonies"]] == ["welcome"]


async def test_a_level_up_from_a_badge_reward_plays_with_the_badge(ctx, client, tenant):
    r = await client.put(
        "/admin/v1/levels",
        json={"levels": [{"name": "普通", "threshold": 0}, {"name": "银卡", "threshold": 10}]},
        headers=tenant.admin,
    )
    assert r.status_code == 200, r.text
    await put_badge(
        client,
        tenant,
        "spinner",
        name="转盘新手",
        criteria=[{"kind": "firstTime", "eventType": "wheel.spun"}],
        reward={"growth": 10, "title": "幸运星"},
    )
    me, headers = await tenant.member("spinner")
    await honour(ctx, tenant.id, me, "wheel.spun", wheelKey="w")
    await deliver(ctx)
    body = await pending(client, headers)
    [group] = [g for g in body["groups"] if any(c["kind"] == "badge" for c in g["ceremonies"])]
    assert sorted(c["kind"] for c in group["ceremonies"]) == ["badge", "level", "title"]
    assert group["ceremonies"][0]["kind"] == "level"  # most important first


async def test_the_honour_wall_shows_a_members_new_nickname_avatar_and_title_at_once(
    ctx, client, tenant
):
    """F10: the cached wall page joins display fields at read time, so a nickname, avatar or
    shown-title change (or removal) shows on the next read."""
    await put_badge(
        client, tenant, "hero", name="Hero", criteria=[{"kind": "manual"}], reward={"title": "英雄"}
    )
    _, headers = await tenant.member("alice")
    r = await client.patch(
        "/v1/me",
        headers=headers,
        json={"nickname": "Alice", "avatarUrl": "https://cdn.example/a.png"},
    )
    assert r.status_code == 200, r.text
    r = await client.post(
        "/admin/v1/members/alice/badges/hero/award", json={"reason": "t"}, headers=tenant.admin
    )
    assert r.status_code == 200, r.text
    await deliver(ctx)

    async def members() -> list[dict]:
        items = (await client.get("/v1/honour-wall", headers=headers)).json()["items"]
        return [i["member"] for i in items]

    before = await members()
    assert len(before) == 2  # the badge and its title
    assert all(m["maskedNickname"] == "A***e" for m in before)
    assert all(m["avatarUrl"] == "https://cdn.example/a.png" for m in before)
    r = await client.patch("/v1/me", headers=headers, json={"nickname": "王小明", "avatarUrl": ""})
    assert r.status_code == 200, r.text
    r = await client.put("/v1/me/title", headers=headers, json={"title": "英雄"})
    assert r.status_code == 200, r.text
    after = await members()
    assert [(m["maskedNickname"], m["avatarUrl"], m["title"]) for m in after] == [
        ("王*明", "", "英雄")
    ] * len(before)


@pytest.mark.parametrize(
    "path,kind",
    [("/v1/honour-wall", "w"), ("/v1/ceremonies/played", "c")],
)
async def test_a_cursor_with_a_negative_huge_or_odd_id_is_cursor_invalid(
    ctx, client, tenant, path, kind
):
    """F6: only cursors we issue (a kind letter and a decimal id within bigint) are read;
    the problem is on the query's cursor, never a body OUT_OF_RANGE."""
    import base64

    _, headers = await tenant.member("alice")
    for raw in ("9223372036854775808", "-1", "+1", " 1", "1_0", "１", "99999999999999999999999"):
        cursor = base64.urlsafe_b64encode(f"{kind}{raw}".encode()).decode().rstrip("=")
        err = assert_error(
            await client.get(path, headers=headers, params={"cursor": cursor}),
            422,
            "VALIDATION_FAILED",
        )
        assert err["details"]["problems"] == [
            {
                "source": "query",
                "path": "cursor",
                "code": "CURSOR_INVALID",
                "problem": err["details"]["problems"][0]["problem"],
            }
        ], raw
    ok = base64.urlsafe_b64encode(f"{kind}9223372036854775807".encode()).decode().rstrip("=")
    r = await client.get(path, headers=headers, params={"cursor": ok})
    assert r.status_code == 200, r.text


async def test_a_bodyless_post_ignores_any_body_as_the_guide_says(ctx, client, tenant):
    """Nit of trial 11: the ack takes no body; like every bodyless route it ignores one (the
    guide says so), whatever its type, and the answer is the same as without."""
    from pathlib import Path

    guide = (Path(__file__).parent.parent / "frontend-api-spec" / "README.md").read_text()
    assert "ignores whatever body comes with it" in guide
    me, headers = await tenant.member("alice")
    await honour(ctx, tenant.id, me, "badge.earned", **badge_payload("a"))
    await honour(ctx, tenant.id, me, "badge.earned", **badge_payload("b"))
    await deliver(ctx)
    ids = [c["id"] for g in (await pending(client, headers))["groups"] for c in g["ceremonies"]]
    assert len(ids) == 2
    r1 = await client.post(
        f"/v1/ceremonies/{ids[0]}/ack",
        content=b"garbage",
        headers={**headers, "Content-Type": "text/plain"},
    )
    r2 = await client.post(f"/v1/ceremonies/{ids[1]}/ack", headers=headers)
    assert r1.status_code == r2.status_code == 200, (r1.text, r2.text)
    assert r1.json()["alreadyPlayed"] is r2.json()["alreadyPlayed"] is False
    assert (await pending(client, headers))["groups"] == []
