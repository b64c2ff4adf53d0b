"""Pure rules of the wheel: odds (chi-square), no modulo bias, pity, out-of-stock, validation."""

from __future__ import annotations

import hashlib
import random

import pytest
from scipy.stats import chisquare

from service.wheel import rules
from tests.wheel_helpers import prize, wheel_config

SEED = bytes.fromhex("5eed" * 16)


def table(prizes, **kw):  # type: ignore[no-untyped-def]
    return rules.table_from_config(wheel_config(prizes, **kw))


def test_draws_follow_the_weights_chi_square_with_pinned_seed():
    t = table(
        [
            prize("grand", "physical", 1),
            prize("big", "points", 9, value=100),
            prize("small", "points", 90, value=5),
            prize("thanks", "nothing", 900),
        ]
    )
    everything = [True] * 4
    counts = [0, 0, 0, 0]
    n = 0
    # Distinct members and spin numbers, exactly as spins derive their words.
    for member in range(1, 2001):
        for spin_no in range(1, 101):
            out, _ = rules.draw_with_blocks(t, everything, False, SEED, member, spin_no)
            counts[out.index] += 1
            n += 1
    expected = [n * w / 1000 for w in (1, 9, 90, 900)]
    _, p = chisquare(counts, expected)
    assert p > 0.01, (counts, expected, p)
    assert sum(counts) == 200_000


def test_words_are_hmac_of_seed_member_and_spin_number():
    ws = rules.words(SEED, 7, 3)
    import hmac

    d = hmac.new(SEED, b"7:3:0", hashlib.sha256).digest()
    assert ws == [int.from_bytes(d[i * 8 : i * 8 + 8], "big") >> 12 for i in range(4)]
    assert all(0 <= w < 2**52 for w in ws)
    assert rules.words(SEED, 7, 4) != ws and rules.words(SEED, 8, 3) != ws
    assert rules.commitment(SEED) == hashlib.sha256(SEED).hexdigest()


def test_rejection_sampling_has_no_modulo_bias():
    # Total weight 3: 2^52 is not a multiple of 3, so the top residue zone must be rejected.
    weights = [1, 1, 1]
    limit = (2**52 // 3) * 3
    assert rules.pick(weights, [0, 1, 2], [limit, limit + 1, 5]) == rules.Pick(2, 2, 5, 2, 3)
    assert rules.pick(weights, [0, 1, 2], [2**52 - 1] * 4) is None
    # Any 3,000 consecutive accepted words hit each residue exactly 1,000 times, and every
    # word of the rejection zone is refused: the map from accepted words is exactly uniform.
    counts = [0, 0, 0]
    for x in range(limit - 3000, limit):
        got = rules.pick(weights, [0, 1, 2], [x])
        assert got is not None
        counts[got.index] += 1
    assert counts == [1000, 1000, 1000]
    assert all(rules.pick(weights, [0, 1, 2], [x]) is None for x in range(limit, 2**52))


def test_out_of_stock_redraw_and_consolation():
    ps = [prize("a", "points", 50, value=1, totalStock=0), prize("thanks", "nothing", 50)]
    avail = [False, True]
    redraw = table(ps, outOfStock="redraw")
    consol = table(ps, outOfStock="consolation")
    fallback_c = 0
    for spin_no in range(1, 401):
        ws = rules.words(SEED, 1, spin_no)
        r = rules.draw(redraw, avail, False, ws)
        c = rules.draw(consol, avail, False, ws)
        assert r is not None and c is not None
        assert r.index == 1 and not r.fallback and r.weight_total == 50
        assert c.index == 1 and c.weight_total == 100
        fallback_c += c.fallback
    # Under "consolation" about half the draws landed on the empty prize and fell back.
    assert 150 < fallback_c < 250


def test_nothing_drawable_gives_consolation_without_a_random_word():
    t = table([prize("a", "points", 5, value=1, totalStock=0), prize("thanks", "nothing", 0)])
    out = rules.draw(t, [False, True], False, rules.words(SEED, 1, 1))
    assert out is not None and out.index == 1 and out.word_index == -1 and out.fallback


def test_pity_forces_a_pity_prize_when_due():
    t = table(
        [prize("rare", "points", 1, value=100), prize("thanks", "nothing", 1_000_000)],
        pity={"afterSpins": 5, "prizeKeys": ["rare"]},
    )
    assert not rules.pity_due(t, 4) and rules.pity_due(t, 5)
    out = rules.draw(t, [True, True], True, rules.words(SEED, 1, 1))
    assert out is not None and out.index == 0 and out.forced
    # A due pity with its prizes gone falls back to the normal draw.
    out = rules.draw(t, [False, True], True, rules.words(SEED, 1, 1))
    assert out is not None and out.index == 1 and not out.forced
    assert rules.next_pity_count(t, 5, 0) == 0 and rules.next_pity_count(t, 5, 1) == 6


def test_validation_lists_every_problem():
    cfg = wheel_config(
        [
            prize("a", "points", 0, value=0, totalStock=-1),
            prize("a", "coupon", 0, dailyStock=-2),
        ],
        consolationPrize=None,
        endsAt="2026-10-01T00:00:00+00:00",
        costPoints=0,
        freeSpinsPerDay=0,
        pity={"afterSpins": 0, "prizeKeys": ["zzz"]},
    )
    paths = {p["path"] for p in rules.config_problems(cfg)}
    assert {
        "endsAt",
        "costPoints",
        "prizes[0].value",
        "prizes[0].totalStock",
        "prizes[1].key",
        "prizes[1].dailyStock",
        "prizes",
        "consolationPrize",
        "pity.afterSpins",
        "pity.prizeKeys[0]",
    } <= paths
    assert rules.config_problems(wheel_config()) == []


def test_probability_after_stock_out_and_simulation():
    t = table(
        [
            prize("big", "physical", 10, totalStock=2),
            prize("pts", "points", 30, value=1),
            prize("thanks", "nothing", 60),
        ]
    )
    assert rules.nominal_probabilities(t) == [0.1, 0.3, 0.6]
    after = rules.probabilities_after_stock_out(t)
    assert after[0] == 0 and abs(after[1] - 1 / 3) < 1e-9 and abs(after[2] - 2 / 3) < 1e-9
    counts = rules.simulate(t, [2, None, None], [None, None, None], 1000, random.Random(1))
    assert counts[0] == 2 and sum(counts) == 1000


def test_contact_is_masked():
    c = {
        "name": "张三丰",
        "phone": "13800138000",
        "address": {"province": "广东", "city": "深圳", "detail": "南山区科技园 1 号"},
    }
    m = rules.mask_contact(c)
    assert m is not None
    assert m["name"] == "张**" and m["phone"] == "138****8000"
    assert m["address"]["detail"] == "****" and m["address"]["city"] == "深圳"


def test_plan_spin_decides_free_paid_caps_and_what_is_left():
    from datetime import date

    from service.wheel.rules import MemberSpins, SpinRefused, plan_spin

    today, yesterday = date(2026, 11, 23), date(2026, 11, 22)
    cfg = {"freeSpinsPerDay": 1, "costPoints": 20, "maxSpinsPerDay": 3, "maxSpinsPerCampaign": 5}
    first = plan_spin(cfg, MemberSpins(0, None, 0, 0), today)
    assert (first.spin_no, first.free, first.cost, first.free_left, first.spins_left) == (
        1,
        True,
        0,
        0,
        2,
    )
    paid = plan_spin(cfg, MemberSpins(1, today, 1, 1), today)
    assert (paid.free, paid.cost, paid.spins_left) == (False, 20, 1)
    # Yesterday's counters do not count today; the campaign cap bounds what is left.
    fresh_day = plan_spin(cfg, MemberSpins(4, yesterday, 3, 1), today)
    assert (fresh_day.free, fresh_day.spin_no, fresh_day.spins_left) == (True, 5, 0)
    for member, code in [
        (MemberSpins(3, today, 3, 1), "WHEEL_CAP_REACHED"),
        (MemberSpins(5, yesterday, 0, 0), "WHEEL_CAP_REACHED"),
    ]:
        with pytest.raises(SpinRefused) as refused:
            plan_spin(cfg, member, today)
        assert refused.value.code == code
    with pytest.raises(SpinRefused) as refused:
        plan_spin({"freeSpinsPerDay": 1}, MemberSpins(1, today, 1, 1), today)
    assert refused.value.code == "WHEEL_NO_SPINS_LEFT"


def test_spin_write_plans_every_row_and_event_of_a_drawn_spin():
    import uuid
    from datetime import UTC, date, datetime

    from service.wheel.rules import Drawn, MemberSpins, SpinKeys, plan_spin, spin_write

    table = rules.table_from_config(
        {
            "prizes": [
                {
                    "key": "big",
                    "name": "Big",
                    "kind": "points",
                    "value": 50,
                    "weight": 1,
                    "totalStock": 3,
                    "perMemberCap": 1,
                },
                {"key": "thanks", "name": "Thanks", "kind": "nothing", "weight": 9},
            ],
            "consolationPrize": "thanks",
            "pity": {"afterSpins": 2, "prizeKeys": ["big"]},
        }
    )
    today = date(2026, 11, 23)
    cfg = {"freeSpinsPerDay": 1, "costPoints": 20}
    member = MemberSpins(4, today, 1, 1, pity=2, wins={})
    plan = plan_spin(cfg, member, today)
    keys = SpinKeys(
        1, 7, "w", 3, 2, 42, uuid.UUID(int=5), 99, today, datetime(2026, 11, 23, tzinfo=UTC)
    )
    drawn = Drawn(0, 1, 0, 10, "e1", False, True, [3, None])
    w = spin_write(
        table,
        keys,
        member,
        plan,
        drawn,
        ws=[11, 22, 33, 44],
        block=0,
        blocked=[False, False],
        pity_was_due=True,
    )
    assert (w.plan.spin_no, w.plan.free, w.plan.cost) == (5, False, 20)
    a = w.advance
    assert (a.spins, a.day, a.spins_day, a.free_used_day, a.pity, a.wins) == (
        5,
        today,
        2,
        1,
        0,
        {"big": 1},
    )
    assert w.random_word == 22 and w.take_total and w.daily_limit is None
    assert w.stock_seen == {"remaining": {"big": 3}, "blocked": [], "pityDue": True, "block": 0}
    assert (w.award_id, w.award_state, w.credit) == (99, "issued", ("points", 50))
    assert [e.type for e in w.events] == ["prize.won", "wheel.spun"]
    assert w.events[0].payload["awardId"] == 99 and w.events[1].payload["cost"] == 20
    # "Thank you": no award, no credit, one event; the pity count goes on.
    lost = spin_write(
        table,
        keys,
        member,
        plan,
        Drawn(1, 0, 5, 10, "e1", False, False, [3, None]),
        ws=[11, 22, 33, 44],
        block=0,
        blocked=[True, False],
        pity_was_due=False,
    )
    assert (lost.award_id, lost.credit, lost.take_total, lost.advance.pity) == (
        None,
        None,
        False,
        3,
    )
    assert [e.type for e in lost.events] == ["wheel.spun"]
    assert lost.stock_seen["blocked"] == ["big"]


def test_spin_refusal_and_spins_left():
    from datetime import date

    from service.wheel.rules import MemberSpins, spin_refusal, spins_left

    assert spin_refusal({}, "draft", None).code == "WHEEL_NOT_LIVE"  # type: ignore[union-attr]
    assert spin_refusal({"minLevel": 2}, "open", None) is None  # level not read yet
    assert spin_refusal({"minLevel": 2}, "open", 1).code == "WHEEL_LEVEL_TOO_LOW"  # type: ignore[union-attr]
    assert spin_refusal({"minLevel": 2}, "open", 2) is None
    today = date(2026, 11, 23)
    cfg = {"freeSpinsPerDay": 2, "maxSpinsPerDay": 5, "maxSpinsPerCampaign": 6}
    left = spins_left(cfg, MemberSpins(4, today, 2, 1), today)
    assert (left.spins, left.free_left, left.today, left.campaign) == (4, 1, 2, 2)
    never = spins_left(cfg, None, today)
    assert (never.spins, never.free_left, never.today, never.campaign) == (0, 2, 5, 6)
