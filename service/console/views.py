"""The operator console: server-rendered pages over the same service functions as /admin/v1.

Every page needs a signed session (``session.py``); every POST carries the session's CSRF
token. Validation problems come from the same checks as the API and are shown next to the
fields, with what the operator typed kept.
"""

from __future__ import annotations

import contextlib
import csv
import io
import re
import secrets
from typing import Any, Literal

import msgspec
from litestar import Request, Response, Router, get, post
from litestar.datastructures import Cookie
from litestar.exceptions import HTTPException
from litestar.response import Redirect, Template

from service.console import charts, session
from service.console.i18n import translator
from service.core import tenancy
from service.core.constraints import (
    KEY_PATTERN,
    constrained,
    free_text,
    normalize_urls,
    problem,
    problems_of,
    rule_problems_of,
)
from service.core.context import Context
from service.core.errors import DomainError
from service.core.tenancy import ApiKeyCache
from service.core.uow import unit_of_work
from service.operator import configs, stats, writers
from service.operator import service as operator_service
from service.operator.routes import KeyId, page_of, tenant_stats
from service.points import service as points
from service.points.schemas import AdjustIn
from service.wheel import service as wheel
from service.wheel.schemas import Key as WheelKey
from service.wheel.schemas import ShipIn, WheelIn

MAX_UPLOAD = 1024 * 1024
KeyName = free_text(64, "A name for the key: who or what uses it.")
KindParam = constrained(str, "A config kind.", min_length=1, max_length=32, pattern=r"^[a-z-]+$")
_WHEEL_KEY = re.compile(r"^[A-Za-z0-9_.\-]{1,64}$")

# kind -> (body type, the feature's own save function): the same calls as the PUT routes.
EDITORS: dict[str, tuple[Any, Any]] = {
    k: (w.body, w.save) for k, w in writers.WRITERS.items() if k != "wheels"
}
# Kinds with one config per tenant: their key is fixed.
SINGLE_KEY = {"levels": "ladder", "rituals": "ritual"}


def schema_fields(type_: Any) -> list[dict[str, Any]]:
    """The body's top-level fields for the editor's reference: name, type, required, text."""
    _, defs = msgspec.json.schema_components([type_])
    name = getattr(type_, "__name__", "")
    body = defs.get(name, {})
    required = set(body.get("required", []))
    out = []
    for field, spec in body.get("properties", {}).items():
        kind = spec.get("type") or ("object" if "$ref" in spec else "")
        if not kind and "anyOf" in spec:
            kind = " | ".join(
                str(x.get("type") or x.get("$ref", "").rsplit("/", 1)[-1]) for x in spec["anyOf"]
            )
        if "enum" in spec:
            kind = " | ".join(map(str, spec["enum"]))
        out.append(
            {
                "name": field,
                "type": kind,
                "required": field in required,
                "text": spec.get("description", ""),
            }
        )
    return out


class Problems(Exception):
    def __init__(self, problems: list[dict]) -> None:
        self.problems = problems


def check_body(type_: Any, raw: Any) -> Any:
    """The API's strict body check (URL fields normalized; shape problems, then the kind's
    rule problems)."""
    try:
        return msgspec.convert(normalize_urls(type_, raw), type_, strict=True)
    except msgspec.ValidationError as exc:
        shape = problems_of(type_, raw, "body") or [
            problem("body", "", "INVALID", str(exc).split(" - ")[0])
        ]
        raise Problems(shape + rule_problems_of(type_, raw, shape)) from exc


def _ctx(request: Request) -> Context:
    return request.app.state.ctx


def _lang(request: Request) -> str:
    return "en" if request.cookies.get("lang") == "en" else "zh"


async def _session(request: Request) -> session.Session | None:
    return await session.load(_ctx(request), request.cookies.get(session.COOKIE))


def render(request: Request, name: str, sess: session.Session | None, **context: Any) -> Template:
    lang = _lang(request)
    return Template(
        template_name=name,
        media_type="text/html",
        context={
            "t": translator(lang),
            "lang": lang,
            "csrf": sess.csrf if sess else "",
            "sess": sess,
            "kinds": list(configs.KINDS),
            "path": request.url.path,
            "actions": None,
            **context,
        },
    )


def _to_login() -> Redirect:
    return Redirect("/console/login", status_code=303)


async def _form(request: Request, sess: session.Session) -> dict[str, Any] | Response:
    """The posted form, or a 403 page when its CSRF token is missing or wrong."""
    form = await request.form()
    if not session.csrf_ok(sess.csrf, form.get("_csrf")):
        t = translator(_lang(request))
        return Response(
            f"<!doctype html><meta charset=utf-8><p>403 CSRF: {t('csrf')}</p>",
            status_code=403,
            media_type="text/html",
        )
    return dict(form.items())


def _problem_map(problems: list[dict]) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for p in problems:
        out.setdefault(p.get("path", ""), []).append(f"{p.get('code', '')}: {p.get('problem', '')}")
    return out


# ----------------------------------------------------------------------------- sign in / out


@get("/login", include_in_schema=False)
async def login_page(request: Request) -> Template:
    token = secrets.token_urlsafe(16)
    tpl = render(request, "login.html", None, login_csrf=token, error=None)
    tpl.cookies.append(
        Cookie(
            key=session.LOGIN_CSRF_COOKIE,
            value=token,
            path="/console",
            httponly=True,
            samesite="strict",
        )
    )
    return tpl


@post("/login", include_in_schema=False, status_code=200)
async def login(request: Request) -> Response[Any] | Template:
    ctx = _ctx(request)
    form = await request.form()
    expected = request.cookies.get(session.LOGIN_CSRF_COOKIE) or ""
    if not expected or not session.csrf_ok(expected, form.get("_csrf")):
        return Response("403 CSRF", status_code=403, media_type="text/plain")
    cache: ApiKeyCache = ctx.api_keys
    op = await cache.verify(
        ctx.db.connection, str(form.get("api_key", "")).strip(), ctx.clock.now()
    )
    if op is None:
        tpl = render(request, "login.html", None, login_csrf=expected, error="bad_key")
        tpl.status_code = 401
        return tpl
    value, _ = session.sign(ctx, op.tenant_id, op.key_id)
    resp = Redirect("/console", status_code=303)
    resp.cookies.append(
        Cookie(
            key=session.COOKIE,
            value=value,
            path="/",
            httponly=True,
            samesite="strict",
            max_age=session.TTL_S,
            secure=request.url.scheme == "https",
        )
    )
    return resp


@post("/logout", include_in_schema=False, status_code=200)
async def logout(request: Request) -> Response[Any]:
    sess = await _session(request)
    if sess is None:
        return _to_login()
    form = await _form(request, sess)
    if isinstance(form, Response):
        return form
    await session.end(_ctx(request), sess)
    resp = Redirect("/console/login", status_code=303)
    resp.cookies.append(Cookie(key=session.COOKIE, value="", path="/", max_age=0, httponly=True))
    return resp


@get("/lang/{lang:str}", include_in_schema=False)
async def set_lang(request: Request, lang: Literal["zh", "en"]) -> Redirect:
    back = request.headers.get("referer") or "/console"
    if not back.startswith(str(request.base_url).rstrip("/")) and not back.startswith("/"):
        back = "/console"
    resp = Redirect(back, status_code=303)
    resp.cookies.append(
        Cookie(key="lang", value="en" if lang == "en" else "zh", path="/", samesite="lax")
    )
    return resp


# ----------------------------------------------------------------------------- dashboard


@get("/", include_in_schema=False)
async def dashboard(request: Request) -> Template | Redirect:
    sess = await _session(request)
    if sess is None:
        return _to_login()
    ctx = _ctx(request)
    figures = await tenant_stats(ctx, sess.tenant_id, 14)
    today = figures.days[-1]
    live: list[Any] = []
    for kind in configs.KINDS.values():
        wanted = next((s for s in ("live", "open") if s in kind.states), None)
        if wanted is None or kind.path in SINGLE_KEY:
            continue
        page = await page_of(request.app.state, sess.tenant_id, kind, wanted, None, 20)
        live += page.items
    low: list[dict] = []
    recent_wins: list[Any] = []
    for item in live:
        if item.kind != "wheels":
            continue
        view = await wheel.get_admin(ctx, sess.tenant_id, item.key)
        for p in view.prizes:
            if (
                p.total_stock
                and p.remaining is not None
                and p.remaining <= max(1, p.total_stock // 10)
            ):
                low.append(
                    {
                        "wheel": item.key,
                        "prize": p.key,
                        "remaining": p.remaining,
                        "total": p.total_stock,
                    }
                )
        recent_wins += await wheel.wheel_awards(ctx, sess.tenant_id, item.key, None, 0, 1000)
    recent_wins = sorted(recent_wins, key=lambda a: a.won_at, reverse=True)[:10]
    ids = await operator_service.external_ids(
        ctx, sess.tenant_id, [a.member_id for a in recent_wins]
    )
    days = [d.day.strftime("%m-%d") for d in figures.days]
    t = translator(_lang(request))
    return render(
        request,
        "dashboard.html",
        sess,
        today=today,
        dead_letters=figures.dead_letters,
        live=live,
        low=low,
        wins=recent_wins,
        external_ids=ids,
        chart_checkins=charts.bars(
            days,
            [[d.checkins for d in figures.days], [d.makeups for d in figures.days]],
            [t("checkins"), t("makeups")],
        ),
        chart_spins=charts.bars(
            days,
            [[d.spins for d in figures.days], [d.wins for d in figures.days]],
            [t("spins"), t("wins")],
        ),
        chart_points=charts.bars(
            days,
            [[d.points_issued for d in figures.days], [d.points_spent for d in figures.days]],
            [t("points_issued"), t("points_spent")],
        ),
    )


@get("/stats.csv", include_in_schema=False)
async def stats_csv(request: Request) -> Any:
    """The dashboard's figures, 90 days, as CSV (the same as GET /admin/v1/stats?format=csv)."""
    sess = await _session(request)
    if sess is None:
        return _to_login()
    figures = await tenant_stats(_ctx(request), sess.tenant_id, 90)
    return Response(
        "\ufeff" + stats.to_csv(figures),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": 'attachment; filename="stats.csv"'},
    )


# ----------------------------------------------------------------------------- config lists


@get("/c/{kind:str}", include_in_schema=False)
async def config_list(request: Request, kind: KindParam) -> Template | Redirect | Response[Any]:
    sess = await _session(request)
    if sess is None:
        return _to_login()
    spec = configs.KINDS.get(kind)
    if spec is None:
        return Response("404", status_code=404, media_type="text/plain")
    status = request.query_params.get("status") or None
    cursor = request.query_params.get("cursor") or None
    try:
        page = await page_of(request.app.state, sess.tenant_id, spec, status, cursor, 50)
    except DomainError as err:
        return render(
            request,
            "list.html",
            sess,
            kind=spec,
            page=None,
            status=status,
            problems=err.details.get("problems", []),
            editable=kind in EDITORS,
            single=SINGLE_KEY.get(kind),
        )
    return render(
        request,
        "list.html",
        sess,
        kind=spec,
        page=page,
        status=status,
        problems=[],
        editable=kind in EDITORS or kind == "wheels",
        actions=writers.WRITERS[kind].actions if kind in writers.WRITERS else None,
        copyable=kind in writers.WRITERS and not writers.WRITERS[kind].single,
        single=SINGLE_KEY.get(kind),
    )


@get("/c/{kind:str}/edit", include_in_schema=False)
async def config_edit(request: Request, kind: KindParam) -> Template | Redirect | Response[Any]:
    sess = await _session(request)
    if sess is None:
        return _to_login()
    if kind not in EDITORS:
        return Response("404", status_code=404, media_type="text/plain")
    key = SINGLE_KEY.get(kind) or request.query_params.get("key") or ""
    text = "{\n}"
    exists = False
    from_version = request.query_params.get("version") or ""
    if key:
        ctx = _ctx(request)
        async with ctx.db.connection() as conn:
            item = await configs.get_item(ctx, conn, sess.tenant_id, configs.KINDS[kind], key)
            doc = item.config if item else None
            exists = item is not None
            if item is not None and from_version.isdigit():
                history = await configs.versions(conn, sess.tenant_id, configs.KINDS[kind], key)
                old = [
                    v for v in (history.items if history else []) if v.version == int(from_version)
                ]
                doc = old[0].config if old else doc
        if doc is not None:
            text = msgspec.json.format(msgspec.json.encode(_clean(doc)), indent=2).decode()
    return _editor(
        request,
        sess,
        kind,
        key,
        text,
        {},
        saved=request.query_params.get("saved"),
        exists=exists,
        from_version=from_version,
    )


def _clean(doc: Any) -> Any:
    """The stored document as a PUT body would carry it (defaults stored as null omitted)."""
    if isinstance(doc, dict):
        return {k: _clean(v) for k, v in doc.items() if v is not None}
    if isinstance(doc, list):
        return [_clean(v) for v in doc]
    return doc


def _editor(
    request: Request,
    sess: session.Session,
    kind: str,
    key: str,
    text: str,
    problems: dict[str, list[str]],
    *,
    saved: Any = None,
    exists: bool = True,
    from_version: str = "",
) -> Template:
    return render(
        request,
        "editor.html",
        sess,
        kind=kind,
        key=key,
        text=text,
        problems=problems,
        saved=saved,
        exists=exists,
        single=SINGLE_KEY.get(kind),
        fields=schema_fields(EDITORS[kind][0]),
        from_version=from_version,
    )


@post("/c/{kind:str}/edit", include_in_schema=False, status_code=200)
async def config_save(request: Request, kind: KindParam) -> Any:
    sess = await _session(request)
    if sess is None:
        return _to_login()
    if kind not in EDITORS:
        return Response("404", status_code=404, media_type="text/plain")
    form = await _form(request, sess)
    if isinstance(form, Response):
        return form
    ctx = _ctx(request)
    type_, save = EDITORS[kind]
    key = SINGLE_KEY.get(kind) or str(form.get("key", "")).strip()[:200]
    text = str(form.get("config", ""))
    is_new = not SINGLE_KEY.get(kind) and str(form.get("new", "")) == "1"
    try:
        found: list[dict] = []
        if not re.match(KEY_PATTERN, key) or len(key) > 64:
            found.append(problem("path", "key", "PATTERN", "1-64 of a-z 0-9 _ -"))
        elif is_new:
            async with ctx.db.connection() as conn:
                taken = await configs.get_item(ctx, conn, sess.tenant_id, configs.KINDS[kind], key)
            if taken is not None:
                found.append(_key_exists(kind, key))
        try:
            raw = msgspec.json.decode(text.encode())
        except msgspec.DecodeError as exc:
            raise Problems([*found, problem("body", "", "JSON_INVALID", str(exc))]) from exc
        try:
            data = check_body(type_, raw)
        except Problems as p:
            raise Problems(found + p.problems) from p
        if found:
            raise Problems(found)
        async with unit_of_work(ctx) as uow:
            await save(uow, sess.tenant_id, key, data)
    except Problems as p:
        return _editor_problems(request, sess, kind, key, text, p.problems, not is_new)
    except DomainError as err:
        probs = err.details.get("problems") or [problem("body", "", err.code, str(err.details))]
        return _editor_problems(request, sess, kind, key, text, probs, not is_new)
    return Redirect(f"/console/c/{kind}/edit?key={key}&saved=1", status_code=303)


@post("/c/{kind:str}/{key:str}/{action:str}", include_in_schema=False, status_code=200)
async def config_action(
    request: Request,
    kind: KindParam,
    key: WheelKey,
    action: Literal["archive", "pause", "resume", "copy"],
) -> Any:
    """archive / pause / resume / copy from the list, through the operator API's writers."""
    sess = await _session(request)
    if sess is None:
        return _to_login()
    w = writers.WRITERS.get(kind)
    if w is None or (action != "copy" and action not in w.actions):
        return Response("404", status_code=404, media_type="text/plain")
    form = await _form(request, sess)
    if isinstance(form, Response):
        return form
    ctx = _ctx(request)
    try:
        async with unit_of_work(ctx) as uow:
            if action == "copy":
                new_key = str(form.get("newKey", "")).strip()
                if not _WHEEL_KEY.match(new_key):
                    raise Problems([problem("body", "newKey", "PATTERN", "1-64 of a-z 0-9 _ . -")])
                await writers.copy(uow, sess.tenant_id, kind, key, new_key)
            else:
                await writers.set_state(uow, sess.tenant_id, kind, key, action)
    except (Problems, DomainError) as exc:
        spec = configs.KINDS[kind]
        page = await page_of(request.app.state, sess.tenant_id, spec, None, None, 50)
        probs = (
            exc.problems
            if isinstance(exc, Problems)
            else [problem("body", "", exc.code, str(exc.details))]
        )
        tpl = render(
            request,
            "list.html",
            sess,
            kind=spec,
            page=page,
            status=None,
            problems=probs,
            editable=True,
            actions=w.actions,
            copyable=not w.single,
            single=SINGLE_KEY.get(kind),
        )
        tpl.status_code = 422
        return tpl
    return Redirect(f"/console/c/{kind}", status_code=303)


def _key_exists(kind: str, key: str) -> dict[str, str]:
    """The problem of a "new" form whose key is taken: never overwrite a live config."""
    where = f"/console/wheels/{key}" if kind == "wheels" else f"/console/c/{kind}/edit?key={key}"
    return problem(
        "body", "key", "KEY_EXISTS", f"{key!r} exists already: open it instead ({where})"
    )


def _editor_problems(  # type: ignore[no-untyped-def]
    request, sess, kind, key, text, problems, exists=False
) -> Template:
    tpl = _editor(request, sess, kind, key, text, _problem_map(problems), exists=exists)
    tpl.status_code = 422
    return tpl


@get("/c/{kind:str}/versions", include_in_schema=False)
async def config_versions(request: Request, kind: KindParam) -> Any:
    """Every saved version of one config (the same list as .../versions in the API)."""
    sess = await _session(request)
    if sess is None:
        return _to_login()
    spec = configs.KINDS.get(kind)
    key = SINGLE_KEY.get(kind) or request.query_params.get("key") or ""
    if spec is None or not re.fullmatch(r"[A-Za-z0-9_.\-]{1,64}", key):
        return Response("404", status_code=404, media_type="text/plain")
    ctx = _ctx(request)
    async with ctx.db.connection() as conn:
        found = await configs.versions(conn, sess.tenant_id, spec, key)
    if found is None:
        return Response("404", status_code=404, media_type="text/plain")
    items = [
        {
            "version": v.version,
            "saved_at": v.saved_at,
            "text": msgspec.json.format(msgspec.json.encode(_clean(v.config)), indent=2).decode(),
            "changed": _changed(v.config, found.items[i + 1].config)
            if i + 1 < len(found.items)
            else [],
        }
        for i, v in enumerate(found.items)
    ]
    return render(
        request,
        "versions.html",
        sess,
        kind=kind,
        key=key,
        items=items,
        editable=kind in EDITORS or kind == "wheels",
    )


def _changed(new: dict, old: dict) -> list[str]:
    """Top-level fields that differ between two saved versions."""
    return sorted(k for k in set(new) | set(old) if new.get(k) != old.get(k))


# ----------------------------------------------------------------------------- the wheel editor


def _num(value: str) -> Any:
    value = value.strip()
    return int(value) if re.fullmatch(r"-?\d{1,18}", value) else value


def wheel_from_form(form: dict[str, Any]) -> dict[str, Any]:
    """The wheel document of the editor's fields; numbers stay text when they are not numbers
    (so the check names the field)."""
    raw: dict[str, Any] = {}
    for field in ("name", "description", "startsAt", "endsAt", "state", "outOfStock", "timezone"):
        v = str(form.get(field, "")).strip()
        if v:
            raw[field] = v
    for field in ("freeSpinsPerDay", "costPoints", "maxSpinsPerDay"):
        v = str(form.get(field, "")).strip()
        if v:
            raw[field] = _num(v)
    if str(form.get("consolationPrize", "")).strip():
        raw["consolationPrize"] = str(form["consolationPrize"]).strip()
    prizes = []
    for i in range(50):
        row = {
            f: str(form.get(f"prizes[{i}].{f}", "")).strip()
            for f in ("key", "name", "kind", "weight", "value", "totalStock")
        }
        if not any(row[f] for f in ("key", "name", "weight", "value", "totalStock")):
            continue
        p: dict[str, Any] = {
            "key": row["key"],
            "name": row["name"],
            "kind": row["kind"] or "nothing",
            "weight": _num(row["weight"]) if row["weight"] else 0,
        }
        if row["value"]:
            p["value"] = _num(row["value"])
        if row["totalStock"]:
            p["totalStock"] = _num(row["totalStock"])
        prizes.append(p)
    raw["prizes"] = prizes
    return raw


def _preview(raw: dict[str, Any]) -> list[dict]:
    """Odds of the typed prizes before saving: weight / total (%), and once every limited
    prize is gone (its weight leaves the table)."""
    prizes = [p for p in raw.get("prizes", []) if isinstance(p.get("weight"), int)]
    total = sum(max(0, p["weight"]) for p in prizes)
    unlimited = sum(max(0, p["weight"]) for p in prizes if p.get("totalStock") is None)
    out = []
    for p in prizes:
        w = max(0, p["weight"])
        limited_prize = p.get("totalStock") is not None
        after = 0.0 if limited_prize or not unlimited else 100 * w / unlimited
        if raw.get("outOfStock") == "consolation" and p["key"] == raw.get("consolationPrize"):
            limited = total - unlimited
            after = 100 * (w + limited) / total if total else 0.0
        elif raw.get("outOfStock") == "consolation" and not limited_prize:
            after = 100 * w / total if total else 0.0
        out.append(
            {
                "key": p["key"],
                "nominal": round(100 * w / total, 2) if total else 0.0,
                "after": round(after, 2),
            }
        )
    return out


async def _wheel_page(  # type: ignore[no-untyped-def]
    request,
    sess,
    key,
    raw,
    problems=None,
    sim=None,
    saved=None,
    status=200,
    sim_n="10000",
    typed_key=None,
    is_new=False,
):
    ctx = _ctx(request)
    view = None
    if key and not is_new:
        try:
            view = await wheel.get_admin(ctx, sess.tenant_id, key)
        except DomainError:
            view = None
    if raw is None:
        raw = msgspec.to_builtins(view.config) if view else _new_wheel(ctx)
    rows = list(raw.get("prizes", []))
    rows += [{} for _ in range(max(3, 8 - len(rows)))]
    tpl = render(
        request,
        "wheel.html",
        sess,
        key=key,
        raw=raw,
        rows=rows,
        view=view,
        preview=_preview(raw),
        problems=_problem_map(problems or []),
        sim=sim,
        sim_n=sim_n,
        saved=saved,
        typed_key=key if typed_key is None else typed_key,
        is_new=is_new or view is None,
    )
    tpl.status_code = status
    return tpl


def _new_wheel(ctx: Context) -> dict[str, Any]:
    from datetime import timedelta, timezone

    now = ctx.clock.now().astimezone(timezone(timedelta(hours=8))).replace(microsecond=0)
    return {
        "name": "",
        "startsAt": now.replace(hour=0, minute=0, second=0).isoformat(),
        "endsAt": (now + timedelta(days=30)).replace(hour=0, minute=0, second=0).isoformat(),
        "state": "draft",
        "freeSpinsPerDay": 1,
        "costPoints": 0,
        "outOfStock": "redraw",
        "prizes": [],
    }


@get("/wheels/new", include_in_schema=False)
async def wheel_new(request: Request) -> Any:
    sess = await _session(request)
    if sess is None:
        return _to_login()
    return await _wheel_page(request, sess, "", None)


@get("/wheels/{key:str}", include_in_schema=False)
async def wheel_edit(request: Request, key: WheelKey) -> Any:
    sess = await _session(request)
    if sess is None:
        return _to_login()
    return await _wheel_page(request, sess, key, None, saved=request.query_params.get("saved"))


async def _save_wheel(ctx: Context, tenant_id: int, key: str, raw: dict[str, Any]) -> None:
    found = (
        []
        if _WHEEL_KEY.match(key)
        else [problem("path", "key", "PATTERN", "1-64 of A-Z a-z 0-9 _ . -")]
    )
    try:
        data = check_body(WheelIn, raw)
    except Problems as p:
        raise Problems(found + p.problems) from p
    if found:
        raise Problems(found)
    try:
        async with unit_of_work(ctx) as uow:
            await wheel.put_wheel(uow, tenant_id, key, data)
    except DomainError as err:
        raise Problems(
            err.details.get("problems") or [problem("body", "", err.code, str(err.details))]
        ) from err


@post("/wheels", include_in_schema=False, status_code=200)
async def wheel_save(request: Request) -> Any:
    sess = await _session(request)
    if sess is None:
        return _to_login()
    form = await _form(request, sess)
    if isinstance(form, Response):
        return form
    key = str(form.get("key", "")).strip()[:200]
    raw = wheel_from_form(form)
    is_new = str(form.get("new", "")) == "1"
    try:
        if is_new and _WHEEL_KEY.match(key):
            with contextlib.suppress(DomainError):
                await wheel.get_admin(_ctx(request), sess.tenant_id, key)
                raise Problems([_key_exists("wheels", key)])
        await _save_wheel(_ctx(request), sess.tenant_id, key, raw)
    except Problems as p:
        return await _wheel_page(
            request,
            sess,
            key if _WHEEL_KEY.match(key) else "",
            raw,
            problems=p.problems,
            status=422,
            typed_key=key,
            is_new=is_new,
        )
    return Redirect(f"/console/wheels/{key}?saved=1", status_code=303)


@post("/wheels/{key:str}/publish", include_in_schema=False, status_code=200)
async def wheel_publish(request: Request, key: WheelKey) -> Any:
    sess = await _session(request)
    if sess is None:
        return _to_login()
    form = await _form(request, sess)
    if isinstance(form, Response):
        return form
    ctx = _ctx(request)
    view = await wheel.get_admin(ctx, sess.tenant_id, key)
    raw = msgspec.to_builtins(view.config)
    raw["state"] = "live"
    try:
        await _save_wheel(ctx, sess.tenant_id, key, raw)
    except Problems as p:
        return await _wheel_page(request, sess, key, raw, problems=p.problems, status=422)
    return Redirect(f"/console/wheels/{key}?saved=1", status_code=303)


@post("/wheels/{key:str}/simulate", include_in_schema=False, status_code=200)
async def wheel_simulate(request: Request, key: WheelKey) -> Any:
    sess = await _session(request)
    if sess is None:
        return _to_login()
    form = await _form(request, sess)
    if isinstance(form, Response):
        return form
    typed = str(form.get("draws", ""))[:20]
    n = _num(typed)
    if not isinstance(n, int) or not 1 <= n <= 100_000:
        return await _wheel_page(
            request,
            sess,
            key,
            None,
            status=422,
            problems=[problem("body", "draws", "OUT_OF_RANGE", "1-100000")],
            sim_n=typed,
        )
    sim = await wheel.simulate(_ctx(request), sess.tenant_id, key, n)
    return await _wheel_page(request, sess, key, None, sim=sim, sim_n=str(n))


# ----------------------------------------------------------------------------- members


async def _console_member(request: Request, tenant_id: int, member: str, ext: str) -> int:
    """The member an operator opened: by member id (``member``), else by externalId.
    Errors: MEMBER_NOT_FOUND."""
    ctx = _ctx(request)
    if member.isdigit() and len(member) < 18:
        return await operator_service.member_id_in_tenant(ctx, tenant_id, int(member))
    if ext:
        return await operator_service.find_member_id(ctx, tenant_id, ext, None)
    raise DomainError("MEMBER_NOT_FOUND", details={"memberId": member or None})


@get("/members", include_in_schema=False)
async def members_page(request: Request) -> Any:
    sess = await _session(request)
    if sess is None:
        return _to_login()
    ctx = _ctx(request)
    q = (request.query_params.get("q") or "").strip()[:64]
    hits = await operator_service.search_members(ctx, sess.tenant_id, q) if q else None
    card = None
    ext = (request.query_params.get("externalId") or "")[:128]
    member = (request.query_params.get("member") or "").strip()[:20]
    wanted = bool(ext or member)
    if wanted:
        try:
            mid = await _console_member(request, sess.tenant_id, member, ext)
            card = await operator_service.member_card(ctx, sess.tenant_id, mid)
        except DomainError:
            card = None
    return render(
        request,
        "members.html",
        sess,
        q=q,
        hits=hits,
        card=card,
        ext=wanted,
        nonce=secrets.token_urlsafe(12),
        problems={},
        form={},
    )


@post("/members/credit", include_in_schema=False, status_code=200)
async def member_credit(request: Request) -> Any:
    sess = await _session(request)
    if sess is None:
        return _to_login()
    form = await _form(request, sess)
    if isinstance(form, Response):
        return form
    ctx = _ctx(request)
    ext = str(form.get("externalId", ""))[:128]
    member = str(form.get("memberId", "")).strip()[:20]
    raw = {
        "currency": "points",
        "amount": _num(str(form.get("amount", ""))),
        "reason": str(form.get("reason", "")).strip(),
        "note": str(form.get("note", "")),
    }
    try:
        data = check_body(AdjustIn, raw)
        if data.amount <= 0:
            raise Problems([problem("body", "amount", "OUT_OF_RANGE", "must be positive")])
        mid = await _console_member(request, sess.tenant_id, member, ext)
        nonce = str(form.get("nonce", ""))[:64] or secrets.token_urlsafe(8)
        async with unit_of_work(ctx) as uow:
            await points.credit(
                uow,
                sess.tenant_id,
                mid,
                "points",
                data.amount,
                reason=data.reason,
                note=data.note,
                source_ref=f"console:{sess.key_id}",
                idempotency_key=f"console:{sess.key_id}:{nonce}",
            )
    except Problems as p:
        card = None
        try:
            mid = await _console_member(request, sess.tenant_id, member, ext)
            card = await operator_service.member_card(ctx, sess.tenant_id, mid)
        except DomainError:
            pass
        tpl = render(
            request,
            "members.html",
            sess,
            q="",
            hits=None,
            card=card,
            ext=True,
            nonce=form.get("nonce", ""),
            problems=_problem_map(p.problems),
            form=form,
        )
        tpl.status_code = 422
        return tpl
    return Redirect(f"/console/members?member={mid}", status_code=303)


# ----------------------------------------------------------------------------- prizes


async def _wheel_keys(request: Request, tenant_id: int) -> list[str]:
    page = await page_of(request.app.state, tenant_id, configs.KINDS["wheels"], None, None, 200)
    return [i.key for i in page.items]


@get("/prizes", include_in_schema=False)
async def prizes_page(request: Request) -> Any:
    sess = await _session(request)
    if sess is None:
        return _to_login()
    ctx = _ctx(request)
    keys = await _wheel_keys(request, sess.tenant_id)
    key = request.query_params.get("wheel") or (keys[0] if keys else None)
    awards = await wheel.wheel_awards(ctx, sess.tenant_id, key, None, 0, 500) if key in keys else []
    ids = await operator_service.external_ids(ctx, sess.tenant_id, [a.member_id for a in awards])
    return render(
        request,
        "prizes.html",
        sess,
        keys=keys,
        key=key,
        awards=awards,
        external_ids=ids,
        message=request.query_params.get("msg"),
        error=None,
    )


@get("/prizes/{key:str}/winners.csv", include_in_schema=False)
async def prizes_csv(request: Request, key: WheelKey) -> Any:
    sess = await _session(request)
    if sess is None:
        return _to_login()
    if key not in await _wheel_keys(request, sess.tenant_id):
        return Response("404", status_code=404, media_type="text/plain")
    body = await operator_service.winners_csv(_ctx(request), sess.tenant_id, key)
    return Response(
        "\ufeff" + body,
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="winners-{key}.csv"'},
    )


@post("/prizes/{key:str}/ship", include_in_schema=False, status_code=200)
async def prizes_ship(request: Request, key: WheelKey) -> Any:
    sess = await _session(request)
    if sess is None:
        return _to_login()
    form = await _form(request, sess)
    if isinstance(form, Response):
        return form
    ctx = _ctx(request)
    try:
        award_id = int(str(form.get("awardId", "")))
        data = check_body(
            ShipIn,
            {
                "carrier": str(form.get("carrier", "")).strip(),
                "trackingNo": str(form.get("trackingNo", "")).strip(),
            },
        )
        async with unit_of_work(ctx) as uow:
            await wheel.ship(uow, sess.tenant_id, key, award_id, data)
    except (Problems, ValueError, DomainError) as exc:
        return await _prizes_error(request, sess, key, _describe(exc))
    return Redirect(f"/console/prizes?wheel={key}&msg=shipped_n", status_code=303)


class _UploadRefused(Exception):
    """A ship upload with a refused line: the whole upload is rolled back."""


def _line_problem(line_no: int, text: str) -> str:
    return f"line {line_no}: {text}"


def _ship_rows(text: str, lang: str) -> tuple[list[tuple[int, int, ShipIn]], list[str]]:
    """The lines of a ship CSV (``awardId,carrier,trackingNo``, header optional) checked:
    (rows, readable per-line problems)."""
    rows: list[tuple[int, int, ShipIn]] = []
    errors: list[str] = []
    try:
        lines = list(csv.reader(io.StringIO(text)))
    except csv.Error:
        return [], [_line_problem(1, "not a CSV file (awardId,carrier,trackingNo)")]
    for line_no, row in enumerate(lines, start=1):
        if not row or not any(c.strip() for c in row):
            continue
        if line_no == 1 and not row[0].strip().isdigit():
            continue  # the header
        if len(row) < 3:
            errors.append(
                _line_problem(
                    line_no, f"3 columns expected (awardId,carrier,trackingNo), got {len(row)}"
                )
            )
            continue
        cell = row[0].strip()
        if not cell.isdigit() or len(cell) > 18:
            errors.append(_line_problem(line_no, f"awardId {cell[:40]!r} is not a number"))
            continue
        try:
            data = check_body(ShipIn, {"carrier": row[1].strip(), "trackingNo": row[2].strip()})
        except Problems as p:
            for x in p.problems:
                errors.append(_line_problem(line_no, f"{x['path']}: {x['problem']}"))
            continue
        rows.append((line_no, int(cell), data))
    return rows, errors


def _describe(exc: Exception) -> str:
    if isinstance(exc, Problems):
        return "; ".join(f"{p['path']}: {p['problem']}" for p in exc.problems)
    if isinstance(exc, DomainError):
        return f"{exc.code}: {exc.localized_message('en')}"
    return "not a number" if isinstance(exc, ValueError) else exc.__class__.__name__


async def _prizes_error(request, sess, key, error, status=422):  # type: ignore[no-untyped-def]
    ctx = _ctx(request)
    keys = await _wheel_keys(request, sess.tenant_id)
    awards = await wheel.wheel_awards(ctx, sess.tenant_id, key, None, 0, 500) if key in keys else []
    ids = await operator_service.external_ids(ctx, sess.tenant_id, [a.member_id for a in awards])
    tpl = render(
        request,
        "prizes.html",
        sess,
        keys=keys,
        key=key,
        awards=awards,
        external_ids=ids,
        message=None,
        error=error,
    )
    tpl.status_code = status
    return tpl


@post(
    "/prizes/{key:str}/ship-upload",
    include_in_schema=False,
    status_code=200,
    request_max_body_size=4 * MAX_UPLOAD,
)
async def prizes_upload(request: Request, key: WheelKey) -> Any:
    """Bulk shipping: a CSV of ``awardId,carrier,trackingNo`` rows (header row optional)."""
    sess = await _session(request)
    if sess is None:
        return _to_login()
    lang = _lang(request)
    t = translator(lang)
    length = request.headers.get("content-length", "")
    if length.isdigit() and int(length) > 4 * MAX_UPLOAD:
        # Refused before reading: the console's own page, not the framework's JSON.
        return await _prizes_error(request, sess, key, t("too_large"), 413)
    try:
        form = await request.form()
    except HTTPException as exc:
        if exc.status_code != 413:
            raise
        return await _prizes_error(request, sess, key, t("too_large"), 413)
    if not session.csrf_ok(sess.csrf, form.get("_csrf")):
        return Response(f"403 CSRF: {t('csrf')}", status_code=403, media_type="text/plain")
    upload = form.get("file")
    name = getattr(upload, "filename", "") or ""
    if upload is None or not name.lower().endswith(".csv"):
        return await _prizes_error(request, sess, key, t("not_csv"), 415)
    content = await upload.read()
    if len(content) > MAX_UPLOAD:
        return await _prizes_error(request, sess, key, t("too_large"), 413)
    try:
        text = content.decode("utf-8-sig")
    except UnicodeDecodeError:
        return await _prizes_error(request, sess, key, t("not_csv"), 415)
    rows, errors = _ship_rows(text, lang)
    ctx = _ctx(request)
    if not errors and rows:
        try:
            # All or nothing: every line in one transaction; any refused line undoes all.
            async with unit_of_work(ctx) as uow:
                for line_no, award_id, data in rows:
                    try:
                        async with uow.savepoint():
                            await wheel.ship(uow, sess.tenant_id, key, award_id, data)
                    except DomainError as err:
                        errors.append(_line_problem(line_no, err.localized_message(lang)))
                if errors:
                    raise _UploadRefused
        except _UploadRefused:
            pass
    if errors or not rows:
        note = t("upload_nothing_applied")
        return await _prizes_error(
            request,
            sess,
            key,
            f"{note} " + " | ".join(errors[:20] or [_line_problem(1, t("upload_empty"))]),
        )
    return Redirect(f"/console/prizes?wheel={key}&msg=shipped_n", status_code=303)


# ----------------------------------------------------------------------------- events, keys


@get("/events", include_in_schema=False)
async def events_page(request: Request) -> Any:
    sess = await _session(request)
    if sess is None:
        return _to_login()
    ctx = _ctx(request)
    replayed = request.query_params.get("replayed")
    failing = request.query_params.get("failing")
    return render(
        request,
        "events.html",
        sess,
        recent=await operator_service.recent_events(ctx, sess.tenant_id),
        dead=await operator_service.dead_letters(ctx, sess.tenant_id),
        replayed=int(replayed) if replayed and replayed.isdigit() else None,
        failing=int(failing) if failing and failing.isdigit() else 0,
        can_replay=sess.operator.allows("admin"),
    )


@post("/events/replay", include_in_schema=False, status_code=200)
async def events_replay(request: Request) -> Any:
    """Deliver this tenant's dead letters again (never another tenant's)."""
    sess = await _session(request)
    if sess is None:
        return _to_login()
    form = await _form(request, sess)
    if isinstance(form, Response):
        return form
    if not sess.operator.allows("admin"):
        return Response("403", status_code=403, media_type="text/plain")
    out = await operator_service.replay_dead_letters(_ctx(request), sess.tenant_id, None)
    return Redirect(
        f"/console/events?replayed={out['replayed']}&failing={out['stillFailing']}",
        status_code=303,
    )


@get("/apikeys", include_in_schema=False)
async def keys_page(request: Request) -> Any:
    sess = await _session(request)
    if sess is None:
        return _to_login()
    return await _keys_page(request, sess)


async def _keys_page(  # type: ignore[no-untyped-def]
    request, sess, created=None, problems=None, form=None, chosen=None, status=200
) -> Template:
    keys = await operator_service.api_keys(_ctx(request), sess.tenant_id)
    tpl = render(
        request,
        "apikeys.html",
        sess,
        keys=keys.items,
        created=created,
        problems=_problem_map(problems or []),
        form=form or {},
        scopes=tenancy.SCOPES,
        chosen=chosen or [],
    )
    tpl.status_code = status
    if created:
        tpl.headers["Cache-Control"] = "no-store"
    return tpl


@post("/apikeys", include_in_schema=False, status_code=200)
async def keys_create(request: Request) -> Any:
    """A new API key of this tenant (admin only; CSRF-checked): its secret is shown once."""
    sess = await _session(request)
    if sess is None:
        return _to_login()
    form = await _form(request, sess)
    if isinstance(form, Response):
        return form
    if not sess.operator.allows("admin"):
        return Response("403", status_code=403, media_type="text/plain")
    raw = await request.form()
    chosen = [str(x) for x in raw.getall("scopes", [])]
    name = str(form.get("name", "")).strip()
    found = problems_of(KeyName, name, "body", "name")
    unknown = sorted(set(chosen) - set(tenancy.SCOPES))
    if unknown:
        found.append(problem("body", "scopes", "NOT_ALLOWED", f"unknown: {', '.join(unknown)}"))
    if not chosen:
        found.append(problem("body", "scopes", "REQUIRED", "choose at least one scope"))
    if found:
        return await _keys_page(request, sess, None, found, form, chosen, 422)
    ctx = _ctx(request)
    async with ctx.db.transaction() as conn:
        full, _ = await tenancy.create_api_key(conn, sess.tenant_id, chosen, name, ctx.clock.now())
    return await _keys_page(request, sess, created=full)


@post("/apikeys/{keyId:str}/revoke", include_in_schema=False, status_code=200)
async def keys_revoke(request: Request, keyId: KeyId) -> Any:
    sess = await _session(request)
    if sess is None:
        return _to_login()
    form = await _form(request, sess)
    if isinstance(form, Response):
        return form
    if not sess.operator.allows("admin"):
        return Response("403", status_code=403, media_type="text/plain")
    with contextlib.suppress(DomainError):
        await operator_service.revoke_key(_ctx(request), sess.tenant_id, keyId)
    return Redirect("/console/apikeys", status_code=303)


console_router = Router(
    path="/console",
    route_handlers=[
        login_page,
        login,
        logout,
        set_lang,
        dashboard,
        stats_csv,
        config_list,
        config_edit,
        config_save,
        config_action,
        config_versions,
        events_replay,
        wheel_new,
        wheel_edit,
        wheel_save,
        wheel_publish,
        wheel_simulate,
        members_page,
        member_credit,
        prizes_page,
        prizes_csv,
        prizes_ship,
        prizes_upload,
        events_page,
        keys_page,
        keys_create,
        keys_revoke,
    ],
    include_in_schema=False,
)

__all__ = ["console_router"]
