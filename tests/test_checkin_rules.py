"""Pure check-in and settlement rules, with a pinned clock: no I/O."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

from hypothesis import given, settings
from hypothesis import strategies as st

from service.challenges import rules as ch
from service.checkins import rules
from service.core.clock import FixedClock

SH = ZoneInfo("Asia/Shanghai")
NY = ZoneInfo("America/New_York")
PLAN = rules.RewardPlan(
    rules.Reward(10),
    (rules.Milestone(3, rules.Reward(20)), rules.Milestone(7, rules.Reward(100, 5))),
)


def d(day: int, month: int = 11, year: int = 2026) -> date:
    return date(year, month, day)


def test_local_day_follows_the_campaign_zone_at_midnight():
    clock = FixedClock(datetime(2026, 11, 23, 15, 59, 59, tzinfo=UTC))
    assert rules.local_day(clock.now(), SH) == d(23)
    clock.advance(seconds=1)
    assert rules.local_day(clock.now(), SH) == d(24)
    assert rules.local_day(clock.now(), NY) == d(23)


def test_day_start_across_dst():
    # New York falls back on 2026-11-01: that day is 25 hours long.
    start, nxt = rules.day_start(d(1), NY), rules.day_start(d(2), NY)
    assert nxt.astimezone(UTC) - start.astimezone(UTC) == timedelta(hours=25)
    assert rules.local_day(nxt - timedelta(microseconds=1), NY) == d(1)


def test_month_bounds_and_year_edge():
    assert rules.month_bounds(d(15, 2, 2028)) == (d(1, 2, 2028), d(29, 2, 2028))
    assert rules.month_bounds(d(31, 12)) == (d(1, 12), d(31, 12))


def test_continuous_plan_pays_milestones_once():
    got = [rules.RewardPlan.reward_for(PLAN, s)[0] for s in range(1, 15)]
    assert [r.points for r in got] == [10, 10, 30, 10, 10, 10, 110, 10, 10, 10, 10, 10, 10, 10]
    assert got[6].growth == 5


def test_ladder_cycle_restarts_every_n_days():
    plan = rules.RewardPlan(rules.Reward(5), (rules.Milestone(7, rules.Reward(70)),), 7)
    assert [plan.position(s) for s in (1, 7, 8, 14, 15)] == [1, 7, 1, 7, 1]
    assert [plan.reward_for(s)[0].points for s in (7, 8, 14, 21)] == [75, 5, 75, 75]


def test_ladder_problems():
    assert rules.ladder_problems([3, 7], 0) == []
    assert rules.ladder_problems([7, 3], 0) == [(1, "streak days must increase strictly")]
    assert rules.ladder_problems([3, 3], 0)[0][0] == 1
    assert rules.ladder_problems([3, 8], 7) == [(1, "day 8 is beyond the 7-day cycle")]


def test_streaks_hot_path_equals_recount():
    state = rules.Streaks(None, 0, 0, 0)
    days = [d(1), d(2), d(3), d(5), d(6), d(9)]
    for day in days:
        state = rules.after_checkin(state, day)
    assert state == rules.streaks_of(days) == rules.Streaks(d(9), 1, 3, 6)


def test_makeup_joining_two_runs_makes_one():
    days = {d(20), d(21), d(23), d(24)}
    assert rules.streaks_of(days).current == 2
    days.add(d(22))
    assert rules.streaks_of(days) == rules.Streaks(d(24), 5, 5, 5)
    assert rules.streak_ending(days, d(22)) == 3


def test_alive_streak_survives_until_the_end_of_the_next_day():
    state = rules.Streaks(d(22), 4, 4, 4)
    assert rules.alive_streak(state, d(22)) == 4
    assert rules.alive_streak(state, d(23)) == 4
    assert rules.alive_streak(state, d(24)) == 0


def test_bitmaps_use_redis_bit_order_and_round_trip():
    bm = rules.bitmap_of([0, 9, 30])
    assert bm == bytes([0x80, 0x40, 0x00, 0x02])
    assert rules.offsets_of(bm) == [0, 9, 30]
    assert rules.bit_set(bm, 9) and not rules.bit_set(bm, 10) and not rules.bit_set(bm, 99)
    epoch = d(1)
    state, alive = rules.streaks_from_bitmap(rules.bitmap_of([20, 21, 22]), epoch, d(24))
    assert (state.last_day, state.current, state.longest, alive) == (d(23), 3, 3, 3)
    assert rules.streaks_from_bitmap(rules.bitmap_of([20, 21, 22]), epoch, d(25))[1] == 0


def test_makeup_eligibility():
    mk = rules.MakeupRules(2, 30, 7)
    today, start, joined = d(23), d(1), d(10)
    assert rules.makeup_problem(mk, d(22), today, start, joined) is None
    assert rules.makeup_problem(mk, d(16), today, start, joined) is None
    assert rules.makeup_problem(mk, d(15), today, start, joined) == "MAKEUP_WINDOW_PASSED"
    assert rules.makeup_problem(mk, d(24), today, start, joined) == "MAKEUP_DATE_IN_FUTURE"
    assert rules.makeup_problem(mk, d(23), today, start, joined) == "MAKEUP_DATE_IS_TODAY"
    assert rules.makeup_problem(mk, d(20), today, d(21), joined) == "MAKEUP_BEFORE_CAMPAIGN"
    assert rules.makeup_problem(mk, d(20), today, start, d(21)) == "MAKEUP_BEFORE_JOINING"
    off = rules.MakeupRules(0, 0, 7)
    assert rules.makeup_problem(off, d(22), today, start, joined) == "MAKEUP_NOT_OFFERED"


def test_plan_checkin_from_the_streak_row_and_from_the_days():
    s = rules.Streaks(d(22), 2, 5, 9)
    p = rules.plan_checkin(PLAN, s, d(23))
    assert (p.day, p.kind, p.streak, p.reward, p.milestone) == (
        d(23),
        "daily",
        3,
        rules.Reward(30),
        PLAN.milestones[0],
    )
    assert p.before == s and p.after == rules.Streaks(d(23), 3, 5, 10)
    # A gap restarts the streak; the first day of a member is day 1.
    assert rules.plan_checkin(PLAN, s, d(25)).after == rules.Streaks(d(25), 1, 5, 10)
    first = rules.plan_checkin(PLAN, rules.Streaks(None, 0, 0, 0), d(23))
    assert first.after == rules.Streaks(d(23), 1, 1, 1) and first.reward == rules.Reward(10)
    # The clock moved back: planned from the days, not the row.
    assert rules.needs_history(s, d(20)) and not rules.needs_history(s, d(23))
    back = rules.plan_checkin(PLAN, s, d(20), {d(18), d(19), d(21), d(22)})
    assert back.streak == 3 and back.after == rules.streaks_of({d(18), d(19), d(20), d(21), d(22)})


def test_plan_makeup_quota_checked_day_and_recount():
    mk = rules.MakeupRules(per_month=2, cost_points=30, window_days=7)
    days = {d(20): "daily", d(21): "daily", d(23): "daily", d(24): "daily"}
    state = rules.streaks_of(days)
    p = rules.plan_makeup(mk, state, days, d(22), d(24))
    assert isinstance(p, rules.CheckinPlan)
    assert (p.kind, p.streak, p.cost, p.reward) == ("makeup", 3, 30, rules.Reward())
    assert p.after == rules.Streaks(d(24), 5, 5, 5) and p.before == state
    assert rules.plan_makeup(mk, state, days, d(21), d(24)) == "MAKEUP_DAY_CHECKED"
    used = {**days, d(1): "makeup", d(2): "makeup"}
    assert rules.plan_makeup(mk, state, used, d(22), d(24)) == "MAKEUP_QUOTA_USED"
    # The quota is per month of the day made up.
    october = {**days, d(30, 10): "makeup", d(31, 10): "makeup"}
    assert isinstance(rules.plan_makeup(mk, state, october, d(22), d(24)), rules.CheckinPlan)


def test_upcoming_rewards():
    state = rules.Streaks(d(22), 2, 2, 2)
    ahead = rules.upcoming(PLAN, state, d(23), False, 3)
    assert [(x[0], x[1], x[2].points) for x in ahead] == [
        (d(23), 3, 30),
        (d(24), 4, 10),
        (d(25), 5, 10),
    ]
    checked = rules.Streaks(d(23), 3, 3, 3)
    assert rules.upcoming(PLAN, checked, d(23), True, 1)[0][:2] == (d(24), 4)


# ----------------------------------------------------------------------------- settlement


def S(i: int, stake: int, ok: bool) -> ch.Stake:
    return ch.Stake(i, stake, ok)


def test_split_by_stake_with_cut_and_remainder_rule():
    s = ch.settle([S(1, 100, True), S(2, 100, False), S(3, 100, False)], 10, "refund")
    assert s.payouts == {1: 280, 2: 0, 3: 0} and s.platform_cut == 20 and s.outcome == "split"
    # Losers' pool 100, no cut, three equal winners: 33 each and 1 left over, which goes to
    # the earliest entry (equal fractions).
    s = ch.settle([S(5, 10, True), S(4, 10, True), S(6, 10, True), S(7, 100, False)], 0, "refund")
    assert s.payouts == {4: 44, 5: 43, 6: 43, 7: 0}
    # By stake: 2:1 weights over a pool of 10 -> 6.67 and 3.33; the larger fraction gets the 1.
    s = ch.settle([S(1, 20, True), S(2, 10, True), S(3, 10, False)], 0, "refund")
    assert s.payouts == {1: 27, 2: 13, 3: 0}


def test_nobody_finishes_and_cancellation():
    entries = [S(1, 50, False), S(2, 70, False)]
    assert ch.settle(entries, 10, "refund").payouts == {1: 50, 2: 70}
    t = ch.settle(entries, 10, "tenant")
    assert t.payouts == {1: 0, 2: 0} and t.platform_cut == 120 and t.outcome == "to_tenant"
    c = ch.settle([S(1, 50, True), S(2, 70, False)], 10, "tenant", cancelled=True)
    assert c.payouts == {1: 50, 2: 70} and c.platform_cut == 0 and c.outcome == "cancelled"


def test_everyone_finishes_gets_their_stake_back():
    s = ch.settle([S(1, 50, True), S(2, 70, True)], 30, "refund")
    assert s.payouts == {1: 50, 2: 70} and s.platform_cut == 0


def test_challenge_days_in_zone():
    assert ch.last_day(d(24), 21) == d(14, 12)
    assert ch.ends_at(d(24), 3, SH) == datetime(2026, 11, 27, tzinfo=SH)


entries_strategy = st.lists(
    st.tuples(st.integers(1, 10_000_000), st.booleans()), min_size=0, max_size=60
)


@settings(max_examples=500, deadline=None)
@given(
    entries=entries_strategy,
    cut=st.integers(0, 100),
    no_winner=st.sampled_from(["refund", "tenant"]),
    cancelled=st.booleans(),
)
def test_settlement_conserves_points(entries, cut, no_winner, cancelled):
    stakes = [ch.Stake(i + 1, s, ok) for i, (s, ok) in enumerate(entries)]
    s = ch.settle(stakes, cut, no_winner, cancelled=cancelled)
    total = sum(x.stake for x in stakes)
    assert s.paid + s.platform_cut == total
    assert set(s.payouts) == {x.entry_id for x in stakes}
    assert all(p >= 0 for p in s.payouts.values())
    winners = [x for x in stakes if x.finished]
    if cancelled:
        assert all(s.payouts[x.entry_id] == x.stake for x in stakes)
    elif winners:
        # A winner never gets less than their stake; a loser gets nothing.
        assert all(s.payouts[x.entry_id] >= x.stake for x in winners)
        assert all(s.payouts[x.entry_id] == 0 for x in stakes if not x.finished)
        pool = total - sum(x.stake for x in winners)
        assert s.platform_cut == pool * cut // 100
        # Shares are proportional to stakes within one point.
        weight = sum(x.stake for x in winners)
        for x in winners:
            exact = (pool - s.platform_cut) * x.stake / weight
            assert abs((s.payouts[x.entry_id] - x.stake) - exact) < 1
