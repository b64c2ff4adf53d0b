"""Pure ceremony rules: which events are honours, their kind, priority, expiry, templates,
grouping and the share card's verification code."""

from __future__ import annotations

import base64
import hashlib
import hmac
import string
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

KINDS = ("ritual", "grandPrize", "level", "badge", "title", "redList", "challenge", "pkWon")
# Most important first when several wait: the entry ritual, then a grand prize, a level...
PRIORITY = {
    "ritual": 100,
    "grandPrize": 90,
    "level": 80,
    "pkWon": 75,
    "badge": 70,
    "title": 60,
    "redList": 50,
    "challenge": 40,
}
TIER_BONUS = {"bronze": 1, "silver": 2, "gold": 3, "platinum": 4, "diamond": 5}
# Days an unplayed ceremony stays pending (a tenant may override per kind).
EXPIRY_DAYS = {
    "ritual": 30,
    "grandPrize": 14,
    "level": 14,
    "badge": 30,
    "title": 30,
    "redList": 7,
    "challenge": 7,
    "pkWon": 14,
}
ANIMATIONS = {
    "ritual": "ritual-welcome",
    "grandPrize": "grand-prize",
    "level": "level-up",
    "badge": "badge-unlock",
    "title": "title-crown",
    "redList": "red-list",
    "challenge": "challenge-won",
    "pkWon": "pk-won",
}
EVENT_TYPES = (
    "badge.earned",
    "title.gained",
    "level.up",
    "red-black.published",
    "challenge.won",
    "prize.won",
    "ritual.completed",
    "pk.won",
    "badge.revoked",
)
# Prize kinds that count as a grand prize ("many small prizes, a few big ones").
GRAND_PRIZE_KINDS = frozenset({"physical"})

# Facts each kind's templates may use as {placeholders}.
FIELDS: dict[str, frozenset[str]] = {
    "ritual": frozenset({"memberNo", "memberNumber"}),
    "grandPrize": frozenset({"prize"}),
    "level": frozenset({"level", "levelName"}),
    "badge": frozenset({"badge", "name", "tier", "series"}),
    "title": frozenset({"title"}),
    "redList": frozenset({"board", "period", "rank"}),
    "challenge": frozenset({"challenge", "payout"}),
    "pkWon": frozenset({"pk", "name", "team", "teamName"}),
}
TEMPLATES: dict[str, dict[str, tuple[str, str]]] = {
    "zh": {
        "ritual": ("欢迎加入！你是第 {memberNo} 位会员", "从今天起，我们一起成长。"),
        "grandPrize": ("恭喜抽中大奖：{prize}", "好运属于你，记得领取奖品哦！"),
        "level": ("升级啦！你已成为{levelName}", "更多会员权益已为你解锁。"),
        "badge": ("恭喜获得「{name}」徽章", "你的坚持被看见了，继续加油！"),
        "title": ("获得头衔「{title}」", "可以在个人主页展示你的新头衔了。"),
        "redList": ("荣登红榜第 {rank} 名", "{period} 期红榜，实至名归！"),
        "challenge": ("挑战成功！", "你完成了「{challenge}」挑战，奖励已到账。"),
        "pkWon": ("{teamName} 赢得了「{name}」！", "团队的胜利有你的一份功劳，奖励已到账。"),
    },
    "en": {
        "ritual": ("Welcome! You are member No. {memberNo}", "From today, we grow together."),
        "grandPrize": ("You won the grand prize: {prize}", "Luck is on your side; claim it!"),
        "level": ("Level up! You are now {levelName}", "New member privileges are unlocked."),
        "badge": ("You earned the {name} badge", "Your effort shows. Keep going!"),
        "title": ("New title: {title}", "Show it on your profile."),
        "redList": ("No. {rank} on the red list", "Red list of {period}: well deserved!"),
        "challenge": ("Challenge won!", "You finished {challenge}; your reward is in."),
        "pkWon": ("{teamName} won {name}!", "Your team won, and you helped; your reward is in."),
    },
}


@dataclass(frozen=True, slots=True)
class Honour:
    """One ceremony to create: for whom, what, and the keys that make it exist once."""

    member_id: int
    kind: str
    dedup_key: str
    group_key: str
    priority: int
    facts: dict[str, Any]
    assets: dict[str, str]


def honours(
    type_: str,
    event_id: str,
    member_id: int | None,
    payload: Mapping[str, Any],
    source: str | None = None,
) -> list[Honour]:
    """The honours one domain event brings (none for most events). ``source``: the business
    event it follows from when the payload does not say (see ``sources``); it groups them."""
    source = str(payload.get("sourceEventId") or source or event_id)

    def one(kind: str, facts: dict[str, Any], icon: str = "", bonus: int = 0) -> list[Honour]:
        if member_id is None:
            return []
        return [
            Honour(
                member_id,
                kind,
                f"{event_id}:{member_id}",
                f"{source}:{member_id}",
                PRIORITY[kind] + bonus,
                facts,
                {"icon": icon, "animation": ANIMATIONS[kind]},
            )
        ]

    if type_ == "badge.earned":
        tier = str(payload.get("tier") or "")
        return one(
            "badge",
            {
                "badge": payload.get("key"),
                "name": payload.get("name"),
                "tier": tier,
                "series": payload.get("series", ""),
                "period": payload.get("period", ""),
                "title": payload.get("title"),
                "memberBadgeId": payload.get("memberBadgeId"),
                "awardNo": payload.get("awardNo", 1),
            },
            str(payload.get("icon") or ""),
            TIER_BONUS.get(tier, 0),
        )
    if type_ == "title.gained":
        return one(
            "title",
            {
                "title": payload.get("title"),
                "source": payload.get("source"),
                "memberBadgeId": payload.get("memberBadgeId"),
                "awardNo": payload.get("awardNo", 1),
            },
        )
    if type_ == "level.up":
        return one(
            "level",
            {
                "level": payload.get("to"),
                "levelName": payload.get("toName", ""),
                "from": payload.get("from"),
            },
        )
    if type_ == "challenge.won":
        return one(
            "challenge", {"challenge": payload.get("challenge"), "payout": payload.get("payout")}
        )
    if type_ == "prize.won":
        if payload.get("kind") not in GRAND_PRIZE_KINDS and not payload.get("grand"):
            return []
        return one(
            "grandPrize", {"prize": payload.get("name"), "prizeKey": payload.get("prizeKey")}
        )
    if type_ == "pk.won":
        return one(
            "pkWon",
            {
                "pk": payload.get("key"),
                "name": payload.get("name"),
                "team": payload.get("team"),
                "teamName": payload.get("teamName", ""),
            },
        )
    if type_ == "ritual.completed":
        return one(
            "ritual",
            {"memberNo": payload.get("memberNo"), "memberNumber": payload.get("memberNumber")},
        )
    if type_ == "red-black.published":
        if int(payload.get("revision") or 1) > 1:
            return []  # a republication is not a new honour
        out = []
        for rank, m in enumerate(payload.get("red") or [], start=1):
            out.append(
                Honour(
                    int(m),
                    "redList",
                    f"{event_id}:{m}",
                    f"{event_id}:{m}",
                    PRIORITY["redList"],
                    {
                        "board": payload.get("boardKey"),
                        "period": payload.get("period"),
                        "rank": rank,
                    },
                    {"icon": "", "animation": ANIMATIONS["redList"]},
                )
            )
        return out
    return []


class _Blank(dict[str, Any]):
    def __missing__(self, key: str) -> str:
        return ""


def render(template: str, facts: Mapping[str, Any]) -> str:
    """Fill {placeholders} from the facts; a missing fact renders empty, never fails."""
    return string.Formatter().vformat(
        template, (), _Blank({k: "" if v is None else v for k, v in facts.items()})
    )


def template_problems(kind: str, lang: str, text: str, path: str) -> list[dict[str, str]]:
    """Placeholders a kind does not know, or a template that does not parse."""
    try:
        parts = [(f, spec, conv) for _, f, spec, conv in string.Formatter().parse(text)]
    except ValueError as exc:
        return [{"source": "body", "path": path, "code": "TEMPLATE_INVALID", "problem": str(exc)}]
    if any(f is not None and (spec or conv) for f, spec, conv in parts):
        # A format spec or conversion could fail (or blow up) when rendered: plain names only.
        return [
            {
                "source": "body",
                "path": path,
                "code": "TEMPLATE_INVALID",
                "problem": "use plain {name} placeholders, without :format or !conversion",
            }
        ]
    names = [f for f, _, _ in parts if f is not None]
    unknown = [n for n in names if n not in FIELDS[kind]]
    return [
        {
            "source": "body",
            "path": path,
            "code": "TEMPLATE_FIELD_UNKNOWN",
            "problem": f"{{{n}}} is not a fact of a {kind} ceremony; use "
            + ", ".join(sorted(FIELDS[kind])),
        }
        for n in unknown
    ]


def verification_code(secret: str, tenant_id: int, ceremony_id: int) -> str:
    """A short code printed on the share card; the brand can check a card is genuine."""
    mac = hmac.new(secret.encode(), f"cer:{tenant_id}:{ceremony_id}".encode(), hashlib.sha256)
    return base64.b32encode(mac.digest()).decode()[:8]


def group(rows: list[Any]) -> list[list[Any]]:
    """Pending ceremonies as groups (one business event's honours play together), the most
    important group first; inside a group, most important first. ``rows`` are mappings with
    group_key, priority, id."""
    groups: dict[str, list[Any]] = {}
    for r in rows:
        groups.setdefault(r["group_key"], []).append(r)
    out = [sorted(g, key=lambda r: (-r["priority"], r["id"])) for g in groups.values()]
    out.sort(key=lambda g: (-g[0]["priority"], min(r["id"] for r in g)))
    return out


def sources(events: list[Any]) -> dict[tuple[int, int | None], str]:
    """(transaction, member) -> the business event behind the badges earned in it. A level up
    or title the badge's reward brought is written in the same transaction without saying
    why; it joins the badge's group through this."""
    out: dict[tuple[int, int | None], str] = {}
    for e in events:
        src = e.payload.get("sourceEventId") if e.type == "badge.earned" else None
        if src and e.txid:
            out.setdefault((e.txid, e.member_id), str(src))
    return out
