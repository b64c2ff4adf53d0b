"""The entry ritual (入会仪式): definitions, the member's flow, member numbers, invitations.

Completing the last required step is one transaction: the member number (from the tenant's
counter row, locked, so numbers are sequential with no gap and no duplicate), the welcome
gift (idempotent ledger keys), a badge through the badges feature, ``ritual.completed``
(the ceremonies feature turns it into the entry ceremony) and ``member.joined`` in the outbox,
and the invitation's ``referral.joined`` (run through the tenant's event rules, so the
operator's existing rules reward both sides). A repeated or concurrent completion finds the
member's progress row completed and changes nothing.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any

import asyncpg
import msgspec
import structlog

from service.core import cursors
from service.core.constraints import birth_date_problem
from service.core.context import Context
from service.core.errors import DomainError, register_codes
from service.core.http import ErrorBody
from service.core.outbox import Event
from service.core.uow import UnitOfWork, unit_of_work
from service.members import service as members
from service.points import service as points
from service.points.schemas import Privilege
from service.rituals import repository as repo
from service.rituals import rules
from service.rituals.schemas import (
    CouponView,
    GiftView,
    InvitationsOut,
    Invitee,
    InviteOutcome,
    MemberNumberOut,
    ReservationIn,
    ReservationList,
    ReservationOut,
    RitualIn,
    RitualOut,
    RitualView,
    StepIn,
    StepView,
)

log = structlog.get_logger("engage.rituals")

register_codes(
    {
        "RITUAL_NOT_CONFIGURED": (
            404,
            "入会仪式尚未配置",
            "This brand has not configured an entry ritual yet.",
        ),
        "RITUAL_STEP_UNKNOWN": (404, "没有这个仪式步骤", "The ritual has no such step."),
        "RITUAL_STEP_OUT_OF_ORDER": (
            409,
            "请先完成上一步",
            "Complete the steps in order; details.next names the step to do first.",
        ),
        "RITUAL_STEP_INVALID": (
            422,
            "填写的内容有误",
            "The step's data is invalid; see details.problems.",
        ),
        "PHONE_CONSENT_REQUIRED": (
            422,
            "请先同意授权手机号",
            "A phone number is only taken with phoneConsent: true.",
        ),
        "PHONE_INVALID": (422, "手机号格式有误", "The phone number is malformed."),
        "INVITE_CODE_INVALID": (
            422,
            "邀请码无效",
            "The invite code is unknown, your own, or cannot apply to you "
            "(details.reason: unknown, self, alreadyReferred, alreadyMember, cycle).",
        ),
        "MEMBER_NUMBER_TAKEN": (
            409,
            "该会员编号已被使用",
            "This member number is already held by a member.",
        ),
        "MEMBER_NUMBER_NOT_RESERVED": (
            422,
            "只能手动分配已预留的编号",
            "Only a reserved number can be assigned by hand; reserve it first.",
        ),
        "MEMBER_ALREADY_NUMBERED": (
            409,
            "该会员已有编号",
            "The member already has a number; numbers are never reassigned.",
        ),
        "RESERVATION_CONFLICT": (
            409,
            "预留编号与已有编号冲突",
            "The range overlaps another reservation or numbers already held.",
        ),
        "RESERVATION_NOT_FOUND": (404, "预留记录不存在", "No such reservation."),
    }
)

SUBSCRIBER = "rituals"
MAX_INVITEES_PAGE = 100
INVITE_CODE_DRAWS = 8


def _invalid(problems: list[dict[str, str]], code: str = "VALIDATION_FAILED") -> DomainError:
    """422 VALIDATION_FAILED (the one code of refused input), every problem listed."""
    return DomainError(code, details={"problems": problems})


# ---------------------------------------------------------------- definitions


async def put_definition(uow: UnitOfWork, tenant_id: int, data: RitualIn) -> RitualOut:
    """Save a new version of the ritual (every problem at once: 422 VALIDATION_FAILED,
    nothing saved). An identical document keeps the current version."""
    ctx, conn = uow.ctx, uow.conn
    doc = msgspec.to_builtins(data)
    problems = rules.definition_problems(doc)
    if data.gift.badge is not None:
        from service.badges import service as badges

        try:
            await badges.get_definition(ctx, tenant_id, data.gift.badge)
        except DomainError:
            problems.append(
                rules.problem("gift.badge", "BADGE_UNKNOWN", f"no badge {data.gift.badge!r}")
            )
    if data.gift.coupon is not None:
        from service.wheel import coupons

        bad = await coupons.pool_problem(
            conn, tenant_id, data.gift.coupon.wheel, data.gift.coupon.prize
        )
        if bad is not None:
            path = "gift.coupon.wheel" if bad[0] == "WHEEL_UNKNOWN" else "gift.coupon.prize"
            problems.append(rules.problem(path, *bad))
    if problems:
        raise _invalid(problems)
    current = await repo.current_definition(conn, tenant_id)
    if current is not None and current["config"] == doc:
        return RitualOut(current["version"], current["created_at"], data)
    now = ctx.clock.now()
    version = await repo.insert_definition(conn, tenant_id, rules.covenant_version(doc), doc, now)
    log.info("ritual saved", tenant=tenant_id, version=version)
    return RitualOut(version, now, data)


async def get_definition(ctx: Context, tenant_id: int) -> RitualOut:
    async with ctx.db.connection() as conn:
        row = await repo.current_definition(conn, tenant_id)
    if row is None:
        raise DomainError("RITUAL_NOT_CONFIGURED")
    return RitualOut(row["version"], row["created_at"], msgspec.convert(row["config"], RitualIn))


async def _definition(conn: asyncpg.Connection, tenant_id: int) -> Any:
    row = await repo.current_definition(conn, tenant_id)
    if row is None:
        raise DomainError("RITUAL_NOT_CONFIGURED")
    return row


# ---------------------------------------------------------------- the member's view


def _privileges(level: dict | None) -> list[Privilege] | None:
    if level is None:
        return None
    return msgspec.convert(level.get("privileges", []), list[Privilege])


async def _view(
    ctx: Context,
    conn: asyncpg.Connection,
    tenant_id: int,
    member_id: int,
    definition: Any,
    progress: Any | None,
    member_no: int | None,
) -> RitualView:
    cfg = definition["config"]
    specs = rules.step_specs(cfg)
    done: dict[str, Any] = dict(progress["steps"]) if progress else {}
    completed = progress is not None and progress["completed_at"] is not None
    current_cov = rules.covenant_version(cfg)
    status = rules.status(
        specs,
        done,
        completed,
        progress["covenant_version"] if progress else None,
        current_cov,
        bool(cfg.get("reaskOnCovenantChange")),
    )
    levels: list[dict] = []
    if any(s["kind"] == "privileges" for s in cfg["steps"]):
        got = await points.ladder_of(ctx, conn, tenant_id)
        levels = got[1]["levels"] if got else []
    steps: list[StepView] = []
    for s in cfg["steps"]:
        mark = done.get(s["key"])
        reask = status == "reacceptRequired" and s["kind"] == "covenant"
        v = StepView(
            s["key"],
            s["kind"],
            s["title"],
            bool(s.get("required", True)),
            mark is not None and not reask,
            datetime.fromisoformat(mark["at"]) if mark else None,
            s.get("body", ""),
        )
        if s["kind"] == "covenant":
            v.text, v.covenant_version = s["text"], s["version"]
        elif s["kind"] == "profile":
            v.fields, v.required_fields = s["fields"], s.get("requiredFields", [])
        elif s["kind"] == "subscription":
            v.template_ids = s.get("templateIds", [])
        elif s["kind"] == "privileges":
            entry = levels[0] if levels else None
            nxt = levels[1] if len(levels) > 1 else None
            v.privileges, v.level_name = _privileges(entry), entry["name"] if entry else None
            v.next_level_privileges = _privileges(nxt)
            v.next_level_name = nxt["name"] if nxt else None
        steps.append(v)
    if status == "reacceptRequired":
        nxt_key = next(s["key"] for s in cfg["steps"] if s["kind"] == "covenant")
    else:
        nxt_key = rules.next_step(specs, done)
    fmt = cfg.get("memberNumber") or {}
    gift = cfg.get("gift") or {}
    return RitualView(
        definition["version"],
        cfg.get("title", ""),
        status,
        nxt_key,
        steps,
        GiftView(
            int(gift.get("points", 0)),
            int(gift.get("growth", 0)),
            gift.get("badge"),
            await _coupon_view(conn, tenant_id, member_id, gift.get("coupon")),
        ),
        member_no,
        rules.format_number(member_no, fmt.get("prefix", "NO."), int(fmt.get("padding", 6))),
        progress["completed_at"] if progress else None,
    )


COUPON_SOURCE = "ritual:welcome"


async def _coupon_view(
    conn: asyncpg.Connection, tenant_id: int, member_id: int, coupon: dict | None
) -> CouponView | None:
    """The welcome coupon as configured, with the member's grant once completed."""
    if not coupon:
        return None
    from service.wheel import coupons

    got = await coupons.grant_of(conn, tenant_id, member_id, COUPON_SOURCE)
    if got is None:
        return CouponView(coupon["wheel"], coupon["prize"])
    return CouponView(got.wheel_key, got.prize_key, got.state, got.code, got.reason)


async def view(ctx: Context, tenant_id: int, member_id: int) -> RitualView:
    """GET /v1/ritual: the steps, what I did, what is next."""
    async with ctx.db.connection() as conn:
        definition = await _definition(conn, tenant_id)
        progress = await repo.get_progress(conn, tenant_id, member_id)
        profile = await members.profile(ctx, tenant_id, member_id, conn)
        return await _view(ctx, conn, tenant_id, member_id, definition, progress, profile.member_no)


# ---------------------------------------------------------------- completing a step


def _step_problems(
    step: dict, data: StepIn, today: date | None = None
) -> tuple[str, list[dict[str, str]]]:
    """(error code, problems) of a step's data; problems empty when valid. ``today``: the
    latest calendar day (a birthday after it is OUT_OF_RANGE)."""
    kind = step["kind"]
    out: list[dict[str, str]] = []
    code = "RITUAL_STEP_INVALID"
    given = {
        "accept": data.accept,
        "covenantVersion": data.covenant_version,
        "nickname": data.nickname,
        "avatarUrl": data.avatar_url,
        "birthday": data.birthday,
        "phone": data.phone,
        "phoneConsent": data.phone_consent,
        "acceptedTemplateIds": data.accepted_template_ids,
    }
    allowed: set[str] = set()
    if kind == "covenant":
        allowed = {"accept", "covenantVersion"}
        if data.accept is not True:
            out.append(rules.problem("accept", "REQUIRED", "accept the covenant: accept: true"))
        if data.covenant_version != step["version"]:
            out.append(
                rules.problem(
                    "covenantVersion",
                    "COVENANT_VERSION_MISMATCH",
                    f"the covenant shown must be version {step['version']!r}",
                )
            )
    elif kind == "profile":
        asked = set(step["fields"])
        names = {"nickname": "nickname", "avatar": "avatarUrl", "birthday": "birthday"}
        allowed = {names[f] for f in asked if f in names}
        if "phone" in asked:
            allowed |= {"phone", "phoneConsent"}
        for f in step.get("requiredFields", []):
            wire = names.get(f, "phone")
            if given[wire] is None:
                out.append(rules.problem(wire, "REQUIRED", f"{wire} is required"))
        bad_birthday = birth_date_problem(data.birthday, today or date.max)
        if bad_birthday is not None:
            out.append(rules.problem("birthday", "OUT_OF_RANGE", bad_birthday))
        bad_phone = rules.phone_problem(data.phone, data.phone_consent)
        if bad_phone is not None:
            code = bad_phone[0]
            out.append(rules.problem("phone", *bad_phone))
    elif kind == "subscription":
        allowed = {"acceptedTemplateIds"}
        known = set(step.get("templateIds", []))
        for i, t in enumerate(data.accepted_template_ids or []):
            if t not in known:
                out.append(
                    rules.problem(
                        f"acceptedTemplateIds[{i}]", "TEMPLATE_UNKNOWN", f"{t!r} is not asked"
                    )
                )
    for name, value in given.items():
        if value is not None and name not in allowed:
            out.append(rules.problem(name, "NOT_ASKED", f"a {kind} step does not take {name}"))
    return code, out


async def complete_step(
    uow: UnitOfWork,
    tenant_id: int,
    member_id: int,
    key: str,
    data: StepIn,
) -> RitualView:
    """POST /v1/ritual/steps/{stepKey}. Idempotent: a step already done answers the current
    state and changes nothing. Errors: 404 RITUAL_NOT_CONFIGURED / RITUAL_STEP_UNKNOWN,
    409 RITUAL_STEP_OUT_OF_ORDER (details.next), 422 RITUAL_STEP_INVALID, PHONE_INVALID,
    PHONE_CONSENT_REQUIRED. An invite code given along is recorded if valid; its outcome is
    in ``invitation`` and never fails the step."""
    ctx, conn = uow.ctx, uow.conn
    now = ctx.clock.now()
    definition = await _definition(conn, tenant_id)
    cfg = definition["config"]
    step = next((s for s in cfg["steps"] if s["key"] == key), None)
    if step is None:
        raise DomainError(
            "RITUAL_STEP_UNKNOWN",
            details={"step": key, "steps": [s["key"] for s in cfg["steps"]]},
        )
    progress = await repo.lock_progress(conn, tenant_id, member_id, definition["version"], now)
    specs = rules.step_specs(cfg)
    done: dict[str, Any] = dict(progress["steps"])
    completed = progress["completed_at"] is not None
    status = rules.status(
        specs,
        done,
        completed,
        progress["covenant_version"],
        rules.covenant_version(cfg),
        bool(cfg.get("reaskOnCovenantChange")),
    )
    reaccept = status == "reacceptRequired" and step["kind"] == "covenant"
    invitation = None
    if data.invite_code is not None and not completed:
        invitation = await _invite_quietly(uow, tenant_id, member_id, data.invite_code, "ritual")

    async def answer(just: bool = False) -> RitualView:
        fresh = await repo.get_progress(conn, tenant_id, member_id)
        profile = await members.profile(ctx, tenant_id, member_id, conn)
        out = await _view(ctx, conn, tenant_id, member_id, definition, fresh, profile.member_no)
        out.just_completed, out.invitation = just, invitation
        return out

    if key in done and not reaccept:
        return await answer()
    if not completed:
        blocking = rules.blocking_step(specs, done, key)
        if blocking is not None:
            raise DomainError("RITUAL_STEP_OUT_OF_ORDER", details={"step": key, "next": blocking})
    # A birthday has no zone: "today" is the latest calendar day anywhere (UTC+14).
    code, problems = _step_problems(step, data, (now.astimezone(UTC) + timedelta(hours=14)).date())
    if problems:
        raise _invalid(problems, code)
    profile_data: dict[str, Any] = dict(progress["profile"])
    consents: dict[str, Any] = dict(progress["consents"])
    cov = progress["covenant_version"]
    stamp = now.isoformat()
    if step["kind"] == "covenant":
        cov = step["version"]
        consents.setdefault("covenant", []).append({"version": cov, "at": stamp})
    elif step["kind"] == "profile":
        if data.nickname is not None or data.avatar_url is not None:
            await members.update_profile(uow, tenant_id, member_id, data.nickname, data.avatar_url)
        if data.birthday is not None:
            profile_data["birthday"] = data.birthday.isoformat()
        if data.phone is not None:
            profile_data["phone"] = data.phone
            consents["phone"] = {"granted": True, "at": stamp}
    elif step["kind"] == "subscription":
        accepted = set(data.accepted_template_ids or [])
        consents["subscription"] = {
            t: {"granted": t in accepted, "at": stamp} for t in step.get("templateIds", [])
        }
        if accepted:
            # Each allowed template is one message the reminders feature may send.
            from service.reminders import service as reminders
            from service.reminders.schemas import SubscriptionsIn

            await reminders.record_grants(
                uow,
                tenant_id,
                member_id,
                SubscriptionsIn(dict.fromkeys(sorted(accepted), "accept")),
            )
    done[key] = {"at": stamp, "version": definition["version"]}
    finishing = not completed and rules.is_complete(specs, done)
    await repo.save_progress(
        conn,
        tenant_id,
        member_id,
        done,
        cov,
        profile_data,
        consents,
        (definition["version"], now) if finishing else None,
        now,
    )
    if not finishing:
        return await answer()
    await _complete(uow, tenant_id, member_id, definition, now)
    out = await answer(True)
    # The number last: the tenant's counter row stays locked from here to the commit, so
    # everything that can run before it does.
    out.member_no, out.member_number = await _join(uow, tenant_id, member_id, definition, now)
    return out


async def _complete(
    uow: UnitOfWork,
    tenant_id: int,
    member_id: int,
    definition: Any,
    now: datetime,
) -> None:
    """The member joins (inside the step's transaction): the gift, the badge, the
    invitation's reward, the invite code. The number and the events follow (``_join``)."""
    ctx, conn = uow.ctx, uow.conn
    cfg = definition["config"]
    gift = cfg.get("gift") or {}
    for currency in ("points", "growth"):
        amount = int(gift.get(currency, 0))
        if amount > 0:
            await points.credit(
                uow,
                tenant_id,
                member_id,
                currency,
                amount,
                reason="ritual:welcome",
                note="入会礼",
                source_ref=f"ritual:{member_id}",
                idempotency_key=f"ritual:{member_id}:gift:{currency}",
            )
    if gift.get("coupon"):
        from service.wheel import coupons

        # Never fails the completion: an empty pool records the coupon as owed.
        await coupons.hand_out(
            uow,
            tenant_id,
            member_id,
            gift["coupon"]["wheel"],
            gift["coupon"]["prize"],
            COUPON_SOURCE,
        )
    if gift.get("badge"):
        from service.badges import service as badges

        try:
            async with uow.savepoint():  # a deleted badge must not stop the member joining
                await badges.award_member(
                    ctx, conn, tenant_id, member_id, gift["badge"], "ritual welcome gift", "ritual"
                )
        except DomainError as exc:
            log.warning("welcome badge not awarded", tenant=tenant_id, error=exc.code)
    referral = cfg.get("referral") or {}
    if referral.get("trigger", "ritual") == "ritual":
        await _referral_joined(uow, tenant_id, member_id, referral, now, "ritual")
    await ensure_code(ctx, conn, tenant_id, member_id)


async def _join(
    uow: UnitOfWork,
    tenant_id: int,
    member_id: int,
    definition: Any,
    now: datetime,
) -> tuple[int, str | None]:
    """The member number, then ``ritual.completed`` (the entry ceremony) and ``member.joined``
    in the outbox."""
    cfg = definition["config"]
    number = await _number_for(uow.ctx, uow.conn, tenant_id, member_id, now)
    fmt = cfg.get("memberNumber") or {}
    shown = rules.format_number(number, fmt.get("prefix", "NO."), int(fmt.get("padding", 6)))
    payload = {"memberNo": number, "memberNumber": shown, "version": definition["version"]}
    uow.emit(
        tenant_id=tenant_id,
        type="ritual.completed",
        member_id=member_id,
        payload=payload,
        occurred_at=now,
    )
    uow.emit(
        tenant_id=tenant_id,
        type="member.joined",
        member_id=member_id,
        payload={"via": "ritual", **payload},
        occurred_at=now,
    )
    log.info("member joined", tenant=tenant_id, member=member_id, member_no=number)
    return number, shown


# ---------------------------------------------------------------- member numbers


async def _number_for(
    ctx: Context, conn: asyncpg.Connection, tenant_id: int, member_id: int, now: datetime
) -> int:
    """The member's number: the one it holds (assigned by hand), else the next of the
    sequence, skipping reserved numbers. The counter row stays locked until commit, so a
    rollback gives the number back and no gap appears.

    The counter is locked BEFORE the member row is read: an operator's hand assignment takes
    the same lock, so one that committed while this waited is seen here (the member keeps the
    hand-given number, and the sequence does not move: no number is handed out twice, none is
    skipped)."""
    start = await repo.lock_counter(conn, tenant_id, now)
    profile = await members.profile(ctx, tenant_id, member_id, conn)
    if profile.member_no is not None:
        return profile.member_no
    number = rules.next_free(start, await repo.reservations_from(conn, tenant_id, start))
    if not await members.set_member_no(conn, tenant_id, member_id, number):
        # Numbered meanwhile by a path that did not take the counter lock: keep that number.
        again = await members.profile(ctx, tenant_id, member_id, conn)
        assert again.member_no is not None
        return again.member_no
    await repo.set_counter(conn, tenant_id, number + 1, now)
    return number


async def number_format(conn: asyncpg.Connection, tenant_id: int) -> tuple[str, int]:
    """Public: the tenant's (prefix, padding) of member numbers (defaults without a ritual)."""
    row = await repo.current_definition(conn, tenant_id)
    return format_of(row["config"] if row else None)


def format_of(config: dict | None) -> tuple[str, int]:
    """Public: (prefix, padding) of member numbers from the current ritual's config (None:
    no ritual, the defaults)."""
    fmt = (config.get("memberNumber") or {}) if config else {}
    return fmt.get("prefix", "NO."), int(fmt.get("padding", 6))


def number_from(config: dict | None, number: int | None) -> str | None:
    """Public: ``formatted_number`` from the current ritual's config read by the caller."""
    if number is None:
        return None
    return rules.format_number(number, *format_of(config))


async def formatted_number(
    conn: asyncpg.Connection, tenant_id: int, number: int | None
) -> str | None:
    """Public: a member number as the tenant shows it (`NO.001024`), for /v1/me and cards."""
    if number is None:
        return None
    prefix, padding = await number_format(conn, tenant_id)
    return rules.format_number(number, prefix, padding)


def _reservation_out(r: Any, assigned: int) -> ReservationOut:
    return ReservationOut(
        r["id"], r["first_no"], r["last_no"], r["note"], assigned, r["created_at"]
    )


async def reserve(uow: UnitOfWork, tenant_id: int, data: ReservationIn) -> ReservationOut:
    """Reserve numbers the sequence will skip. 422 VALIDATION_FAILED (to < from);
    409 RESERVATION_CONFLICT when the range overlaps another reservation or a held number."""
    ctx, conn = uow.ctx, uow.conn
    lo, hi = data.from_, data.to if data.to is not None else data.from_
    if hi < lo:
        raise _invalid(
            [rules.problem("to", "RANGE_REVERSED", "to must be >= from")], "VALIDATION_FAILED"
        )
    if hi - lo >= 1_000_000:
        raise _invalid(
            [rules.problem("to", "RANGE_TOO_LARGE", "at most 1,000,000 numbers")],
            "VALIDATION_FAILED",
        )
    now = ctx.clock.now()
    await repo.lock_counter(conn, tenant_id, now)
    for r in await repo.reservations(conn, tenant_id):
        if rules.ranges_overlap((lo, hi), (r["first_no"], r["last_no"])):
            raise DomainError(
                "RESERVATION_CONFLICT",
                details={"overlaps": {"id": r["id"], "from": r["first_no"], "to": r["last_no"]}},
            )
    held = await members.count_numbers_between(conn, tenant_id, lo, hi)
    if held:
        raise DomainError("RESERVATION_CONFLICT", details={"heldNumbers": held})
    row = await repo.insert_reservation(conn, tenant_id, lo, hi, data.note, now)
    return _reservation_out(row, 0)


async def reservations(ctx: Context, tenant_id: int) -> ReservationList:
    async with ctx.db.connection() as conn:
        rows = await repo.reservations(conn, tenant_id)
        items = [
            _reservation_out(
                r, await members.count_numbers_between(conn, tenant_id, r["first_no"], r["last_no"])
            )
            for r in rows
        ]
        nxt = await repo.peek_counter(conn, tenant_id)
        nxt = rules.next_free(nxt, [(r["first_no"], r["last_no"]) for r in rows])
    return ReservationList(items, nxt)


async def unreserve(uow: UnitOfWork, tenant_id: int, rid: int) -> ReservationList:
    """Drop a reservation (numbers already assigned from it stay with their members)."""
    ctx, conn = uow.ctx, uow.conn
    await repo.lock_counter(conn, tenant_id, ctx.clock.now())
    if not await repo.delete_reservation(conn, tenant_id, rid):
        raise DomainError("RESERVATION_NOT_FOUND", details={"id": rid})
    rows = await repo.reservations(conn, tenant_id)
    return ReservationList(
        [_reservation_out(r, 0) for r in rows],
        rules.next_free(
            await repo.peek_counter(conn, tenant_id), [(r["first_no"], r["last_no"]) for r in rows]
        ),
    )


async def assign_number(
    uow: UnitOfWork, tenant_id: int, external_id: str, number: int
) -> MemberNumberOut:
    """Give a member a reserved number by hand. 422 MEMBER_NUMBER_NOT_RESERVED; 409
    MEMBER_NUMBER_TAKEN (held, also when requested again); 409 MEMBER_ALREADY_NUMBERED."""
    ctx, conn = uow.ctx, uow.conn
    member_id = await members.resolve_member_id(conn, tenant_id, external_id)
    await repo.lock_counter(conn, tenant_id, ctx.clock.now())
    ranges = [(r["first_no"], r["last_no"]) for r in await repo.reservations(conn, tenant_id)]
    if not any(lo <= number <= hi for lo, hi in ranges):
        raise DomainError("MEMBER_NUMBER_NOT_RESERVED", details={"number": number})
    holder = await members.member_with_no(conn, tenant_id, number)
    if holder is not None:
        raise DomainError(
            "MEMBER_NUMBER_TAKEN",
            details={"number": number, "heldByThisMember": holder == member_id},
        )
    if not await members.set_member_no(conn, tenant_id, member_id, number):
        profile = await members.profile(ctx, tenant_id, member_id, conn)
        raise DomainError("MEMBER_ALREADY_NUMBERED", details={"memberNo": profile.member_no})
    shown = await formatted_number(conn, tenant_id, number)
    return MemberNumberOut(external_id, number, shown or str(number))


# ---------------------------------------------------------------- invitations


async def ensure_code(
    ctx: Context, conn: asyncpg.Connection, tenant_id: int, member_id: int
) -> str:
    """The member's invite code, drawn (injected RNG) on first need."""
    code = await repo.code_of(conn, tenant_id, member_id)
    if code is not None:
        return code
    now = ctx.clock.now()
    for _ in range(INVITE_CODE_DRAWS):
        got = await repo.insert_code(conn, tenant_id, member_id, rules.new_code(ctx.rng), now)
        if got is not None:
            return got
    raise DomainError("CONFLICT", headers={"Retry-After": "1"})


async def accept_invite(
    uow: UnitOfWork, tenant_id: int, member_id: int, raw: str, via: str
) -> InviteOutcome:
    """Record who invited the member: the first valid code only. 422 INVITE_CODE_INVALID with
    details.reason (unknown, self, alreadyReferred, alreadyMember, cycle)."""
    ctx, conn = uow.ctx, uow.conn
    code = rules.normalize_code(raw)
    if code is None:
        raise DomainError("INVITE_CODE_INVALID", details={"reason": "unknown"})
    # Lock order: the member's progress row, then the tenant's referral lock (as a step that
    # carries an invite code does), so a completion and a code never cross unseen.
    is_member = await repo.lock_completed(conn, tenant_id, member_id)
    await repo.lock_referrals(conn, tenant_id)
    inviter = await repo.member_of_code(conn, tenant_id, code)
    existing = await repo.referral_of(conn, tenant_id, member_id)
    chain = (
        await repo.inviter_chain(conn, tenant_id, inviter)
        if inviter is not None and existing is None and inviter != member_id
        else []
    )
    refusal = rules.referral_refusal(
        inviter_id=inviter,
        invitee_id=member_id,
        existing_inviter=existing["inviter_id"] if existing else None,
        invitee_is_member=is_member,
        inviter_chain=chain,
    )
    if refusal is not None:
        raise DomainError("INVITE_CODE_INVALID", details={"reason": refusal})
    if existing is not None:
        return InviteOutcome("alreadyRecorded")
    assert inviter is not None
    await repo.insert_referral(conn, tenant_id, member_id, inviter, code, via, ctx.clock.now())
    return InviteOutcome("recorded")


async def _invite_quietly(
    uow: UnitOfWork, tenant_id: int, member_id: int, raw: str, via: str
) -> InviteOutcome:
    try:
        async with uow.savepoint():
            return await accept_invite(uow, tenant_id, member_id, raw, via)
    except DomainError as exc:
        return InviteOutcome(
            "rejected", ErrorBody(exc.code, exc.localized_message("en"), exc.details)
        )


async def invite_at_login(
    uow: UnitOfWork, tenant_id: int, member_id: int, raw: str
) -> InviteOutcome:
    """Login hook (registered with the members feature): record an invite code given at
    login, in the login's transaction; a bad code is reported in the outcome and never
    fails the login."""
    return await _invite_quietly(uow, tenant_id, member_id, raw, "login")


async def _referral_joined(
    uow: UnitOfWork,
    tenant_id: int,
    invitee_id: int,
    referral: dict,
    now: datetime,
    trigger: str,
) -> None:
    """The invitee joined (or paid a first order): once per invitee, ``referral.joined``
    runs through the tenant's event rules for both sides (attribute ``role``: inviter or
    invitee) and is emitted for other subscribers (badges, boards)."""
    conn = uow.conn
    inviter = await repo.take_pending(conn, tenant_id, invitee_id, now)
    if inviter is None:
        return
    limit = referral.get("dailyLimitPerInviter")
    if limit is not None:
        from zoneinfo import ZoneInfo

        day = now.astimezone(ZoneInfo(referral.get("timezone") or "Asia/Shanghai")).date()
        if not await repo.count_daily(conn, tenant_id, inviter, day, int(limit)):
            await repo.set_referral_outcome(conn, tenant_id, invitee_id, "capped", 0, 0)
            log.info("referral over daily limit", tenant=tenant_id, inviter=inviter)
            return
    from service.events import service as events
    from service.events.schemas import EventIn

    def event(role: str, other: int) -> EventIn:
        return EventIn(
            event_id=f"referral:{invitee_id}:{role}",
            external_id="",
            type="referral.joined",
            occurred_at=now,
            attributes={
                "role": role,
                "inviterId" if role == "invitee" else "inviteeId": other,
                "trigger": trigger,
            },
        )

    result = await events.apply_member_events(
        uow,
        tenant_id,
        [(inviter, event("inviter", invitee_id)), (invitee_id, event("invitee", inviter))],
    )
    earned = {"points": 0, "growth": 0}
    for eff in result.results[0].effects:
        if eff.kind == "credit":
            earned[eff.currency] += eff.amount
    await repo.set_referral_outcome(
        conn, tenant_id, invitee_id, "joined", earned["points"], earned["growth"]
    )
    uow.emit(
        tenant_id=tenant_id,
        type="referral.joined",
        member_id=inviter,
        payload={"inviterId": inviter, "inviteeId": invitee_id, "trigger": trigger},
        occurred_at=now,
    )


async def invitations(
    ctx: Context, tenant_id: int, member_id: int, cursor: str | None, limit: int
) -> InvitationsOut:
    """GET /v1/me/invitations: my code and scene, my invitees (masked), rewards earned."""
    limit = max(1, min(limit, MAX_INVITEES_PAGE))
    before = cursors.decode("i", cursor)
    async with ctx.db.transaction() as conn:
        code = await ensure_code(ctx, conn, tenant_id, member_id)
        rows = await repo.invitees(conn, tenant_id, member_id, before, limit)
        totals = await repo.invite_totals(conn, tenant_id, member_id)
        shown = await members.display_info(conn, tenant_id, [r["invitee_id"] for r in rows])
    items = []
    for r in rows:
        d = shown.get(r["invitee_id"])
        items.append(
            Invitee(
                d.masked_nickname if d else members.ANONYMOUS,
                d.avatar_url if d else "",
                r["state"],
                r["created_at"],
                r["joined_at"],
            )
        )
    return InvitationsOut(
        code,
        rules.scene_of(code),
        totals["invited"],
        totals["joined"],
        items,
        int(totals["points"]),
        int(totals["growth"]),
        cursors.encode("i", rows[-1]["id"]) if len(rows) == limit else None,
    )


# ---------------------------------------------------------------- public reads for others


async def member_state(
    ctx: Context, conn: asyncpg.Connection, tenant_id: int, member_id: int
) -> tuple[str, str | None]:
    """Public (the launch summary): (status, next step) of the member's ritual; status
    ``none`` when the brand has no ritual. Two short queries."""
    row = await repo.current_definition(conn, tenant_id)
    if row is None:
        return "none", None
    progress = await repo.get_progress(conn, tenant_id, member_id)
    return state_from(row["config"], progress)


def state_from(cfg: dict | None, progress: Any) -> tuple[str, str | None]:
    """Public: ``member_state`` from the current ritual's config (None: no ritual) and the
    member's progress row (``steps, covenant_version, completed_at``; None: not started)
    read by the caller."""
    if cfg is None:
        return "none", None
    specs = rules.step_specs(cfg)
    done = progress["steps"] if progress else {}
    completed = progress is not None and progress["completed_at"] is not None
    status = rules.status(
        specs,
        done,
        completed,
        progress["covenant_version"] if progress else None,
        rules.covenant_version(cfg),
        bool(cfg.get("reaskOnCovenantChange")),
    )
    if status == "reacceptRequired":
        return status, next(s["key"] for s in cfg["steps"] if s["kind"] == "covenant")
    return status, None if completed else rules.next_step(specs, done)


async def personal_data(conn: asyncpg.Connection, tenant_id: int, member_id: int) -> dict[str, Any]:
    """Public (privacy export): profile fields given in the ritual, consents, the referral,
    coupons handed out (the welcome coupon)."""
    from service.wheel import coupons

    progress = await repo.get_progress(conn, tenant_id, member_id)
    referral = await repo.referral_of(conn, tenant_id, member_id)
    return {
        "profile": dict(progress["profile"]) if progress else {},
        "consents": dict(progress["consents"]) if progress else {},
        "ritualCompletedAt": progress["completed_at"].isoformat()
        if progress and progress["completed_at"]
        else None,
        "inviteCode": await repo.code_of(conn, tenant_id, member_id),
        "invitedBy": referral["inviter_id"] if referral else None,
        "coupons": await coupons.grants_of(conn, tenant_id, member_id),
    }


async def masked_phone(conn: asyncpg.Connection, tenant_id: int, member_id: int) -> str | None:
    progress = await repo.get_progress(conn, tenant_id, member_id)
    return rules.mask_phone(progress["profile"].get("phone")) if progress else None


async def erase_personal(
    ctx: Context, conn: asyncpg.Connection, tenant_id: int, member_id: int, actor: str, reason: str
) -> None:
    """Public (privacy erasure): profile data and consents of the ritual removed, audited."""
    await repo.erase_progress(conn, tenant_id, member_id)
    await repo.record_erasure(conn, tenant_id, member_id, actor, reason, ctx.clock.now())


async def erased_at(conn: asyncpg.Connection, tenant_id: int, member_id: int) -> datetime | None:
    return await repo.erased_at(conn, tenant_id, member_id)


# ---------------------------------------------------------------- the subscriber


async def on_events(ctx: Context, events: list[Event]) -> None:
    """Outbox subscriber: a tenant whose invitations count on the first paid order turns the
    invitee's first ``order.paid`` (a brand event) into ``referral.joined``, once."""
    paid = [
        e
        for e in events
        if e.member_id is not None
        and e.type == "member.event"
        and e.payload.get("type") == "order.paid"
    ]
    for e in paid:
        async with unit_of_work(ctx) as uow:
            row = await repo.current_definition(uow.conn, e.tenant_id)
            referral = (row["config"].get("referral") or {}) if row else {}
            if referral.get("trigger") != "firstOrder":
                continue
            assert e.member_id is not None
            await _referral_joined(
                uow, e.tenant_id, e.member_id, referral, e.occurred_at, "firstOrder"
            )


async def invite_counts(
    conn: asyncpg.Connection, tenant_id: int, member_id: int
) -> tuple[int, int]:
    """Public (support card): (members invited, of whom joined)."""
    t = await repo.invite_totals(conn, tenant_id, member_id)
    return int(t["invited"]), int(t["joined"])
