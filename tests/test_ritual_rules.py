"""Pure ritual rules: step order, completion, re-asking, number format and sequence,
phones, invite codes and referral refusals."""

from __future__ import annotations

import random

from hypothesis import given
from hypothesis import strategies as st

from service.rituals import rules
from service.rituals.rules import StepSpec

STEPS = [
    StepSpec("covenant", "covenant", True),
    StepSpec("tips", "custom", False),
    StepSpec("profile", "profile", True),
    StepSpec("subscribe", "subscription", False),
]


def test_order_skips_optional_steps_but_never_a_required_one():
    assert rules.blocking_step(STEPS, [], "covenant") is None
    assert rules.blocking_step(STEPS, [], "tips") == "covenant"
    assert rules.blocking_step(STEPS, [], "profile") == "covenant"
    assert rules.blocking_step(STEPS, ["covenant"], "profile") is None  # tips skipped
    assert rules.next_step(STEPS, ["covenant"]) == "tips"
    assert not rules.is_complete(STEPS, ["covenant", "tips"])
    assert rules.is_complete(STEPS, ["covenant", "profile"])


def test_status_and_reasking():
    assert rules.status(STEPS, [], False, None, "v1", False) == "notStarted"
    assert rules.status(STEPS, ["covenant"], False, "v1", "v1", False) == "inProgress"
    assert rules.status(STEPS, ["covenant"], True, "v1", "v2", False) == "completed"
    assert rules.status(STEPS, ["covenant"], True, "v1", "v2", True) == "reacceptRequired"
    assert rules.status(STEPS, ["covenant"], True, "v2", "v2", True) == "completed"


def test_number_format():
    assert rules.format_number(1024, "NO.", 6) == "NO.001024"
    assert rules.format_number(1234567, "NO.", 6) == "NO.1234567"
    assert rules.format_number(7, "", 0) == "7"
    assert rules.format_number(None, "NO.", 6) is None


def test_next_free_skips_reserved_ranges():
    assert rules.next_free(1, [(1, 100), (101, 101), (8888, 8888)]) == 102
    assert rules.next_free(8888, [(1, 100), (8888, 8888)]) == 8889
    assert rules.next_free(5, []) == 5


@given(
    st.integers(1, 500),
    st.lists(st.tuples(st.integers(1, 600), st.integers(0, 50)), max_size=8),
)
def test_next_free_is_the_smallest_unreserved_number(start, raw):
    ranges = [(lo, lo + n) for lo, n in raw]
    got = rules.next_free(start, ranges)
    assert got >= start
    assert not any(lo <= got <= hi for lo, hi in ranges)
    assert all(any(lo <= k <= hi for lo, hi in ranges) for k in range(start, got))


def test_phones_need_consent_and_a_valid_number():
    assert rules.phone_problem(None, None) is None
    assert rules.phone_problem("13800138000", None)[0] == "PHONE_CONSENT_REQUIRED"
    assert rules.phone_problem("13800138000", False)[0] == "PHONE_CONSENT_REQUIRED"
    assert rules.phone_problem("1380013800", True)[0] == "PHONE_INVALID"
    assert rules.phone_problem("12800138000", True)[0] == "PHONE_INVALID"
    assert rules.phone_problem("13800138000", True) is None
    assert rules.phone_problem("+85291234567", True) is None
    assert rules.mask_phone("13812345678") == "138****5678"


def test_invite_codes_fit_a_scene_and_normalize():
    code = rules.new_code(random.Random(1))
    assert len(code) == rules.CODE_LENGTH and set(code) <= set(rules.CODE_ALPHABET)
    assert len(rules.scene_of(code)) <= 32
    assert rules.normalize_code("inv=" + code.lower()) == code
    assert rules.normalize_code(" " + code + " ") == code
    assert rules.normalize_code("no spaces inside") is None
    assert rules.normalize_code("x" * 33) is None


def test_referral_refusals():
    def refuse(**kw):  # type: ignore[no-untyped-def]
        base = {
            "inviter_id": 1,
            "invitee_id": 2,
            "existing_inviter": None,
            "invitee_is_member": False,
            "inviter_chain": [],
        }
        return rules.referral_refusal(**{**base, **kw})

    assert refuse() is None
    assert refuse(inviter_id=None) == "unknown"
    assert refuse(inviter_id=2) == "self"
    assert refuse(existing_inviter=1) is None  # the same code again
    assert refuse(existing_inviter=3) == "alreadyReferred"
    assert refuse(invitee_is_member=True) == "alreadyMember"
    assert refuse(inviter_chain=[5, 2]) == "cycle"


def test_definition_problems_are_all_reported():
    doc = {
        "steps": [
            {"kind": "covenant", "key": "a", "required": False},
            {"kind": "covenant", "key": "a"},
            {
                "kind": "profile",
                "key": "p",
                "fields": ["phone", "phone"],
                "requiredFields": ["birthday"],
            },
        ],
        "referral": {"timezone": "Mars/Base"},
    }
    codes = sorted(p["code"] for p in rules.definition_problems(doc))
    assert codes == [
        "COVENANT_OPTIONAL",
        "DUPLICATE_COVENANT",
        "DUPLICATE_FIELD",
        "DUPLICATE_KEY",
        "FIELD_NOT_ASKED",
        "TIMEZONE_UNKNOWN",
    ]
    assert (
        rules.definition_problems({"steps": [{"kind": "custom", "key": "x", "required": False}]})[
            0
        ]["code"]
        == "NO_REQUIRED_STEP"
    )
