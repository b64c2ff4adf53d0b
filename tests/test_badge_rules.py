"""Pure badge and ceremony rules: periods, earning, reward cycles, templates, grouping."""

from __future__ import annotations

from datetime import UTC, datetime

from service.badges import rules
from service.ceremonies import rules as crules


def spec(key: str, criteria: list[dict], **cfg) -> rules.BadgeSpec:  # type: ignore[no-untyped-def]
    return rules.spec_from(1, 1, key, {"criteria": criteria, **cfg}, "Asia/Shanghai")


def test_periods_are_local_days_weeks_and_months_inside_the_window():
    at = datetime(2026, 11, 29, 16, 30, tzinfo=UTC)  # Monday 00:30 in Shanghai
    crit = [{"kind": "memberJoined"}]
    assert rules.period_id(spec("a", crit), at) == ""
    assert rules.period_id(spec("a", crit, repeat="daily"), at) == "2026-11-30"
    assert rules.period_id(spec("a", crit, repeat="weekly"), at) == "2026-W49"
    assert rules.period_id(spec("a", crit, repeat="monthly"), at) == "2026-11"
    windowed = spec(
        "a",
        crit,
        window={"startsAt": "2026-12-01T00:00:00+08:00", "endsAt": "2026-12-02T00:00:00+08:00"},
    )
    assert rules.period_id(windowed, at) is None
    assert rules.period_id(windowed, datetime(2026, 11, 30, 16, 0, tzinfo=UTC)) == ""
    assert rules.period_id(windowed, datetime(2026, 12, 1, 16, 0, tzinfo=UTC)) is None


def test_all_criteria_must_be_met_and_manual_never_is():
    s = spec(
        "a",
        [
            {"kind": "eventCount", "eventType": "checkin.done", "count": 2},
            {"kind": "levelReached", "level": 1},
        ],
    )
    assert not rules.met(s, {0: 2})
    assert rules.met(s, {0: 2, 1: 1})
    assert rules.progress(s, {0: 2}) == (1, 2)
    assert not rules.met(spec("m", [{"kind": "manual"}]), {0: 5})


def test_reward_cycles_direct_and_through_other_badges():
    rich = spec(
        "rich", [{"kind": "totalEarned", "currency": "points", "amount": 5}], reward={"points": 1}
    )
    assert rules.reward_cycle([rich], "rich") == ["rich", "rich"]
    ok = spec(
        "ok", [{"kind": "totalEarned", "currency": "points", "amount": 5}], reward={"growth": 1}
    )
    assert rules.reward_cycle([ok], "ok") is None
    a = spec("a", [{"kind": "badgeEarned", "badge": "b"}])
    b = spec("b", [{"kind": "badgeEarned", "badge": "a"}])
    assert rules.reward_cycle([a, b], "a") == ["a", "b", "a"]
    c = spec("c", [{"kind": "levelReached", "level": 2}], reward={"growth": 10})
    assert rules.reward_cycle([c], "c") == ["c", "c"]  # growth can raise the level it counts


def test_a_bonus_after_a_once_only_milestone_is_no_cycle():
    """F12: tq waits for tp (once-only), so tq's points can never earn tp again."""
    tp = spec(
        "tp", [{"kind": "totalEarned", "currency": "points", "amount": 100}], reward={"points": 9}
    )
    tp_plain = spec("tp", [{"kind": "totalEarned", "currency": "points", "amount": 100}])
    tq = spec("tq", [{"kind": "badgeEarned", "badge": "tp"}], reward={"points": 50})
    tr = spec("tr", [{"kind": "badgeEarned", "badge": "tq"}], reward={"points": 5})
    assert rules.reward_cycle([tp_plain, tq], "tq") is None
    assert rules.reward_cycle([tp_plain, tq, tr], "tr") is None  # through a chain
    assert rules.reward_cycle([tp, tq], "tp") == ["tp", "tp"]  # tp still feeds itself
    # A repeatable milestone is earned again later: tq's points can earn it, so refused.
    weekly = spec(
        "tp",
        [{"kind": "totalEarned", "currency": "points", "amount": 100}],
        repeat="weekly",
    )
    assert rules.reward_cycle([weekly, tq], "tq") == ["tq", "tp", "tq"]
    # tq counting points itself while waiting for tp: its reward earns itself.
    greedy = spec(
        "tq",
        [
            {"kind": "badgeEarned", "badge": "tp"},
            {"kind": "totalEarned", "currency": "points", "amount": 10},
        ],
        reward={"points": 50},
    )
    assert rules.reward_cycle([tp_plain, greedy], "tq") == ["tq", "tq"]


def test_problems_are_all_reported_with_paths():
    out = rules.problems(
        {
            "criteria": [
                {"kind": "eventCount", "eventType": "nope", "count": 0},
                {"kind": "totalEarned", "currency": "gold", "amount": -1},
            ],
            "window": {
                "startsAt": "2026-12-01T00:00:00+08:00",
                "endsAt": "2026-11-01T00:00:00+08:00",
            },
        },
        known_event_types=[],
        known_boards=[],
        level_count=None,
        known_campaigns=[],
        known_badges=[],
    )
    assert {(p["path"], p["code"]) for p in out} == {
        ("criteria[0].count", "COUNT_INVALID"),
        ("criteria[0].eventType", "EVENT_TYPE_UNKNOWN"),
        ("criteria[1].amount", "COUNT_INVALID"),
        ("criteria[1].currency", "CURRENCY_UNKNOWN"),
        ("window.endsAt", "WINDOW_EMPTY"),
    }
    # A brand event type is known once it has an event rule.
    assert not rules.problems(
        {"criteria": [{"kind": "eventCount", "eventType": "order.paid", "count": 1}]},
        known_event_types=["order.paid"],
        known_boards=[],
        level_count=None,
        known_campaigns=[],
        known_badges=[],
    )


def test_templates_render_facts_and_refuse_unknown_placeholders():
    assert crules.render("第 {rank} 名 {missing}", {"rank": 3}) == "第 3 名 "
    assert crules.template_problems("redList", "zh", "{rank}{board}", "zh.headline") == []
    [p] = crules.template_problems("redList", "zh", "{badge}", "zh.headline")
    assert p["code"] == "TEMPLATE_FIELD_UNKNOWN"
    [p] = crules.template_problems("badge", "en", "{name", "en.headline")
    assert p["code"] == "TEMPLATE_INVALID"
    [p] = crules.template_problems("badge", "en", "{name:x}", "en.headline")
    assert p["code"] == "TEMPLATE_INVALID"  # would fail when rendered


def test_groups_play_the_most_important_first():
    rows = [
        {"id": 1, "group_key": "e1", "priority": 70},
        {"id": 2, "group_key": "e2", "priority": 80},
        {"id": 3, "group_key": "e1", "priority": 73},
        {"id": 4, "group_key": "e3", "priority": 40},
    ]
    groups = crules.group(rows)
    assert [[r["id"] for r in g] for g in groups] == [[2], [3, 1], [4]]


def test_one_red_black_publication_honours_each_red_member_once():
    hs = crules.honours(
        "red-black.published", "ev", None, {"boardKey": "w", "period": "2026-W48", "red": [7, 9]}
    )
    assert [(h.member_id, h.facts["rank"]) for h in hs] == [(7, 1), (9, 2)]
    assert len({h.dedup_key for h in hs}) == 2
    assert crules.honours("red-black.published", "ev", None, {"revision": 2, "red": [7]}) == []
    assert crules.honours("prize.won", "ev", 7, {"kind": "coupon"}) == []
    assert crules.verification_code("s", 1, 2) == crules.verification_code("s", 1, 2)
    assert crules.verification_code("s", 1, 2) != crules.verification_code("s", 1, 3)
