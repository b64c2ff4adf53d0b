"""Pure ritual rules: definition checks, step order, completion, re-asking, member number
format and the sequence around reservations, phone checks, invite codes, referral checks."""

from __future__ import annotations

import random
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

# Invite codes: no 0/O, 1/I/L, so a code read aloud or typed from a poster is unambiguous.
CODE_ALPHABET = "23456789ABCDEFGHJKMNPQRSTUVWXYZ"
CODE_LENGTH = 8
SCENE_PREFIX = "inv="  # mini-program scene: "inv=K7Q2M9XA" (12 characters, limit 32)
CODE_RE = re.compile(r"^[A-Za-z0-9]{4,16}$")
# Mainland mobile numbers (1 + 10 digits), or E.164 with a leading +.
PHONE_RE = re.compile(r"^(1[3-9]\d{9}|\+[1-9]\d{6,14})$")


def problem(path: str, code: str, text: str) -> dict[str, str]:
    return {"source": "body", "path": path, "code": code, "problem": text}


@dataclass(frozen=True, slots=True)
class StepSpec:
    """The parts of a step the flow needs (built from the stored definition)."""

    key: str
    kind: str
    required: bool


def definition_problems(doc: Mapping[str, Any]) -> list[dict[str, str]]:
    """Every problem of a ritual document (camelCase builtins), all at once."""
    out: list[dict[str, str]] = []
    steps = doc.get("steps") or []
    seen: set[str] = set()
    covenants = 0
    for i, s in enumerate(steps):
        path = f"steps[{i}]"
        if s["key"] in seen:
            out.append(problem(f"{path}.key", "DUPLICATE_KEY", f"step key {s['key']!r} repeats"))
        seen.add(s["key"])
        if s["kind"] == "covenant":
            covenants += 1
            if covenants > 1:
                out.append(problem(f"{path}.kind", "DUPLICATE_COVENANT", "one covenant step"))
            if not s.get("required", True):
                out.append(
                    problem(f"{path}.required", "COVENANT_OPTIONAL", "a covenant is required")
                )
        if s["kind"] == "profile":
            fields = s.get("fields") or []
            if len(set(fields)) != len(fields):
                out.append(problem(f"{path}.fields", "DUPLICATE_FIELD", "a field repeats"))
            for j, f in enumerate(s.get("requiredFields") or []):
                if f not in fields:
                    out.append(
                        problem(
                            f"{path}.requiredFields[{j}]",
                            "FIELD_NOT_ASKED",
                            f"{f!r} is required but not among the step's fields",
                        )
                    )
    if steps and not any(s.get("required", True) for s in steps):
        out.append(problem("steps", "NO_REQUIRED_STEP", "at least one step must be required"))
    tz = (doc.get("referral") or {}).get("timezone") or "Asia/Shanghai"
    try:
        ZoneInfo(tz)
    except (ZoneInfoNotFoundError, ValueError):
        out.append(problem("referral.timezone", "TIMEZONE_UNKNOWN", f"unknown time zone {tz!r}"))
    return out


def step_specs(doc: Mapping[str, Any]) -> list[StepSpec]:
    return [StepSpec(s["key"], s["kind"], bool(s.get("required", True))) for s in doc["steps"]]


def covenant_version(doc: Mapping[str, Any]) -> str | None:
    for s in doc["steps"]:
        if s["kind"] == "covenant":
            return str(s["version"])
    return None


def next_step(steps: Sequence[StepSpec], done: Iterable[str]) -> str | None:
    """The first step not done yet (optional ones included: the client may show them)."""
    have = set(done)
    for s in steps:
        if s.key not in have:
            return s.key
    return None


def blocking_step(steps: Sequence[StepSpec], done: Iterable[str], key: str) -> str | None:
    """Steps are taken in order: a step may be completed once every REQUIRED step before it
    is done (optional steps before it are skipped). Returns the required step still missing
    before ``key``, or None when ``key`` may be completed now."""
    have = set(done)
    for s in steps:
        if s.key == key:
            return None
        if s.required and s.key not in have:
            return s.key
    return None


def is_complete(steps: Sequence[StepSpec], done: Iterable[str]) -> bool:
    have = set(done)
    return all(s.key in have for s in steps if s.required)


def status(
    steps: Sequence[StepSpec],
    done: Iterable[str],
    completed: bool,
    accepted_covenant: str | None,
    current_covenant: str | None,
    reask: bool,
) -> str:
    """notStarted, inProgress, completed or reacceptRequired."""
    if completed:
        if reask and current_covenant is not None and accepted_covenant != current_covenant:
            return "reacceptRequired"
        return "completed"
    return "inProgress" if set(done) & {s.key for s in steps} else "notStarted"


def format_number(number: int | None, prefix: str, padding: int) -> str | None:
    """`NO.` + zero-padded number: format_number(1024, "NO.", 6) == "NO.001024"."""
    if number is None:
        return None
    return f"{prefix}{number:0{padding}d}"


def next_free(start: int, reserved: Sequence[tuple[int, int]]) -> int:
    """The smallest number >= ``start`` outside every reserved range (inclusive bounds)."""
    n = start
    moved = True
    while moved:
        moved = False
        for lo, hi in reserved:
            if lo <= n <= hi:
                n = hi + 1
                moved = True
    return n


def ranges_overlap(a: tuple[int, int], b: tuple[int, int]) -> bool:
    return a[0] <= b[1] and b[0] <= a[1]


def phone_problem(phone: str | None, consent: bool | None) -> tuple[str, str] | None:
    """(error code, text) when a phone may not be taken; None when it may (or none given)."""
    if phone is None:
        return None
    if consent is not True:
        return "PHONE_CONSENT_REQUIRED", "a phone number needs phoneConsent: true"
    if not PHONE_RE.match(phone):
        return "PHONE_INVALID", "a mainland mobile number (11 digits) or +<country><number>"
    return None


def mask_phone(phone: str | None) -> str | None:
    """138****5678: personal data is masked on every read except the member's own export."""
    if not phone:
        return None
    if len(phone) < 7:
        return "*" * len(phone)
    return phone[:3] + "*" * (len(phone) - 7) + phone[-4:]


def new_code(rng: random.Random) -> str:
    return "".join(rng.choice(CODE_ALPHABET) for _ in range(CODE_LENGTH))


def normalize_code(raw: str) -> str | None:
    """An invite code as given in a link or scene (`inv=K7Q2M9XA`, any case); None if it
    cannot be a code at all."""
    code = raw.strip()
    if code.lower().startswith(SCENE_PREFIX):
        code = code[len(SCENE_PREFIX) :]
    if not CODE_RE.match(code):
        return None
    return code.upper()


def scene_of(code: str) -> str:
    return SCENE_PREFIX + code


def referral_refusal(
    *,
    inviter_id: int | None,
    invitee_id: int,
    existing_inviter: int | None,
    invitee_is_member: bool,
    inviter_chain: Iterable[int],
) -> str | None:
    """Why a code may not make ``inviter_id`` the invitee's referrer (None: it may).

    unknown (no such code), self, alreadyReferred (a first valid code already counted),
    alreadyMember (the invitee completed the ritual before), cycle (the invitee is among the
    inviter's own referrers: A invited B, B's code used by A)."""
    if inviter_id is None:
        return "unknown"
    if inviter_id == invitee_id:
        return "self"
    if existing_inviter is not None:
        return None if existing_inviter == inviter_id else "alreadyReferred"
    if invitee_is_member:
        return "alreadyMember"
    if invitee_id in set(inviter_chain):
        return "cycle"
    return None
