"""Real-browser tests: headless Debian Chromium driven by Playwright against `engage serve`.

The server is a real `engage serve` process on the test database and Redis prefix; the
operator works in /console and the member in /h5 (a phone-sized viewport). Every page is
saved as a screenshot under tests/artifacts/browser/ (gitignored); a failing step saves
``FAILED-<step>.png`` there. Chromium comes from Debian (`apt-get install -y chromium`); no
browser is downloaded.
"""

from __future__ import annotations

import asyncio
import contextlib
import csv
import io
import os
import secrets
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import urllib.request
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest

from service.core import ownership
from tests.conftest import RUN_ID, new_tenant

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
ENGAGE = str(Path(os.sys.executable).parent / "engage")
ARTIFACTS = Path(__file__).parent / "artifacts" / "browser"

pytestmark = pytest.mark.skipif(
    CHROMIUM is None, reason="Debian's chromium is not installed (apt-get install -y chromium)"
)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def server(servers) -> Iterator[str]:  # type: ignore[no-untyped-def]
    """`engage serve` on the test database, its own data folder and port."""
    root = Path(tempfile.mkdtemp(prefix="engage-browser-")).resolve()
    port = _free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("ENGAGE_")}
    env.update(
        ENGAGE_DATA_DIR=str(root),
        ENGAGE_DATABASE_URL=servers["database_url"],
        ENGAGE_REDIS_URL=servers["redis_url"],
        ENGAGE_REDIS_PREFIX=f"t{RUN_ID}",
        ENGAGE_DEV_LOGIN="true",
        ENGAGE_TOKEN_SECRET=secrets.token_hex(32),
        ENGAGE_WORKERS="1",
        ENGAGE_LOG_FORMAT="json",
        ENGAGE_LOG_LEVEL="warning",
        ENGAGE_HOST="127.0.0.1",
    )
    log = open(root / "serve.log", "wb")  # noqa: SIM115
    proc = subprocess.Popen(
        [ENGAGE, "serve", "--port", str(port)],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while True:
            assert proc.poll() is None, (root / "serve.log").read_text()[-3000:]
            with contextlib.suppress(OSError), urllib.request.urlopen(url + "/health/live") as r:
                if r.status == 200:
                    break
            assert time.monotonic() < deadline, (root / "serve.log").read_text()[-3000:]
            time.sleep(0.3)
        yield url
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            ownership.terminate([*_children(proc.pid)], grace_s=3)
        log.close()
        shutil.rmtree(root, ignore_errors=True)


def _children(pid: int) -> list:  # type: ignore[type-arg]
    import psutil

    with contextlib.suppress(psutil.Error):
        p = psutil.Process(pid)
        return [p, *p.children(recursive=True)]
    return []


@pytest.fixture
async def browser() -> AsyncIterator[object]:
    from playwright.async_api import async_playwright

    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    async with async_playwright() as pw:
        b = await pw.chromium.launch(
            executable_path=CHROMIUM, headless=True, args=["--no-sandbox", "--disable-gpu"]
        )
        try:
            yield b
        finally:
            await b.close()


class Steps:
    """Names each step; a failing step leaves its screenshot, every step leaves one."""

    def __init__(self, page, prefix: str) -> None:  # type: ignore[no-untyped-def]
        self.page, self.prefix, self.n = page, prefix, 0

    @contextlib.asynccontextmanager
    async def step(self, name: str) -> AsyncIterator[None]:
        self.n += 1
        label = f"{self.prefix}-{self.n:02d}-{name}"
        try:
            yield
        except BaseException:
            with contextlib.suppress(Exception):
                await self.page.screenshot(
                    path=str(ARTIFACTS / f"FAILED-{label}.png"), full_page=True
                )
            raise
        await self.page.screenshot(path=str(ARTIFACTS / f"{label}.png"), full_page=True)


async def dismiss_ceremonies(page) -> int:  # type: ignore[no-untyped-def]
    """Play every ceremony the page shows (click its OK); how many modals were shown."""
    shown = 0
    for _ in range(10):
        await page.wait_for_timeout(600)
        if not await page.locator("#ceremony").is_visible():
            return shown
        shown += 1
        await page.click("#ceremony-ok")
    return shown


async def test_operator_and_member_end_to_end(server, browser, ctx, client) -> None:  # type: ignore[no-untyped-def]
    tenant = await new_tenant(ctx, client)
    now = datetime.now(UTC)
    async with httpx.AsyncClient(base_url=server, headers=tenant.admin, timeout=30) as api:
        r = await api.put(
            "/admin/v1/checkin-campaigns/daily",
            json={
                "startsAt": (now - timedelta(days=10)).isoformat(),
                "state": "live",
                "title": "每日签到",
                "baseReward": {"points": 5},
                "makeup": {"perMonth": 3, "costPoints": 0, "windowDays": 7},
            },
        )
        assert r.status_code == 200, r.text

    # ------------------------------------------------------------- the operator
    op_ctx = await browser.new_context(
        viewport={"width": 1280, "height": 860}, accept_downloads=True
    )
    page = await op_ctx.new_page()
    s = Steps(page, "console")
    async with s.step("login"):
        await page.goto(server + "/console")
        assert page.url.endswith("/console/login")
        await page.fill("#api-key", "egk_000000000000_wrong")
        await page.click("#sign-in")
        assert await page.locator("#login-error").is_visible()
    async with s.step("dashboard"):
        await page.fill("#api-key", tenant.api_key)
        await page.click("#sign-in")
        await page.wait_for_url(server + "/console")
        assert await page.locator("#today").is_visible()
    async with s.step("wheel-problems"):
        await page.goto(server + "/console/wheels/new")
        await page.fill("input[name=key]", "lucky")
        await page.fill("input[name=name]", "幸运大转盘")
        await page.fill("input[name=consolationPrize]", "pts")
        await page.fill("input[name='prizes[0].key']", "big")
        await page.fill("input[name='prizes[0].name']", "iPhone 大奖")
        await page.select_option("select[name='prizes[0].kind']", "physical")
        await page.fill("input[name='prizes[0].weight']", "one")
        await page.fill("input[name='prizes[0].totalStock']", "1")
        await page.fill("input[name='prizes[1].key']", "pts")
        await page.fill("input[name='prizes[1].name']", "10 积分")
        await page.select_option("select[name='prizes[1].kind']", "points")
        await page.fill("input[name='prizes[1].weight']", "3")
        await page.fill("input[name='prizes[1].value']", "-10")
        await page.click("#save-wheel")
        await page.wait_for_selector("#problems")
        paths = await page.locator(".field-error").evaluate_all(
            "els => els.map(e => e.dataset.path)"
        )
        assert {"prizes[0].weight", "prizes[1].value"} <= set(paths)
        assert await page.input_value("input[name='prizes[0].name']") == "iPhone 大奖"
    async with s.step("wheel-saved"):
        await page.fill("input[name='prizes[0].weight']", "1")
        await page.fill("input[name='prizes[1].value']", "10")
        await page.click("#save-wheel")
        await page.wait_for_selector("#odds")
        odds = await page.locator("#odds").inner_text()
        assert "25.00%" in odds and "75.00%" in odds and "100.00%" in odds
    async with s.step("wheel-simulated"):
        await page.fill("#sim-n", "2000")
        await page.click("#simulate")
        await page.wait_for_selector("#sim-result")
        assert "big" in await page.locator("#sim-result").inner_text()
        # The page says how many draws it simulated, keeps the number typed, and the
        # table adds up to it.
        assert await page.get_attribute("#sim-draws", "data-draws") == "2000"
        assert await page.input_value("#sim-n") == "2000"
        assert await page.locator("#sim-total").inner_text() == "2,000"
        # The prize kind select shows its whole word.
        box = await page.locator("select[name='prizes[0].kind']").bounding_box()
        assert box is not None and box["width"] >= 90
    async with s.step("wheel-published"):
        await page.click("#publish")
        await page.wait_for_selector("#saved")
        # One word for a wheel's state: the list says what the wheel API says.
        assert await page.get_attribute("#wheel-status", "data-state") == "open"
        await page.goto(server + "/console/c/wheels")
        assert await page.get_attribute("tr[data-key=lucky] .pill", "data-state") == "open"
        await page.goto(server + "/console/wheels/lucky")

    # ------------------------------------------------------------- the member
    phone = await browser.new_context(
        viewport={"width": 390, "height": 844}, device_scale_factor=2, is_mobile=True
    )
    m = await phone.new_page()
    ms = Steps(m, "h5")
    async with ms.step("login"):
        await m.goto(f"{server}/h5?app={tenant.app_id}&checkin=daily&wheel=lucky")
        await m.fill("#openid", "browser-member")
        await m.click("#login-btn")
        await m.wait_for_selector("#checkin-panel:not([hidden])")
        await dismiss_ceremonies(m)
    async with ms.step("checked-in"):
        await m.click("#checkin-btn")
        await m.wait_for_function(
            "document.getElementById('checkin-btn').textContent.includes('已签到')"
        )
        await m.wait_for_function("document.getElementById('me-points').textContent === '5'")
        await dismiss_ceremonies(m)
    async with ms.step("spun"):
        await m.wait_for_selector("#wheel-panel:not([hidden])")
        await m.click("#spin-btn")
        await m.wait_for_selector("#spin-note[data-prize]", timeout=15000)
        shown = await m.get_attribute("#spin-note", "data-prize")
        slot = int(await m.get_attribute("#wheel", "data-slot"))
        assert shown in {"big", "pts"} and slot == {"big": 0, "pts": 1}[shown]
        await m.wait_for_selector(f"#prizes li[data-prize='{shown}']")
        # The win toast never covers the header's points.
        await m.wait_for_selector("#toast:not([hidden])")
        toast = await m.locator("#toast").bounding_box()
        points = await m.locator("#me-points").bounding_box()
        assert toast is not None and points is not None
        assert toast["y"] > points["y"] + points["height"]
        await dismiss_ceremonies(m)
    async with ms.step("reloaded"):
        # Every ceremony was acked when played: a reload shows none again.
        await m.reload()
        await m.wait_for_selector("#wheel-panel:not([hidden])")
        assert await dismiss_ceremonies(m) == 0
        assert await m.locator("#spin-btn").is_disabled()  # the one free spin is used

    # ------------------------------------------------------------- back to the operator
    async with s.step("dashboard-win"):
        await page.goto(server + "/console")
        assert await page.locator("#today-spins").inner_text() == "1"
        assert await page.locator("#today-wins").inner_text() == "1"
        assert await page.locator("#recent-wins td").count() >= 4
    async with s.step("winners-csv"):
        await page.goto(server + "/console/prizes?wheel=lucky")
        async with page.expect_download() as info:
            await page.click("#export-csv")
        download = await info.value
        saved = Path(await download.path())
        text = (await asyncio.to_thread(saved.read_bytes)).decode("utf-8-sig")
        rows = list(csv.DictReader(io.StringIO(text)))
        assert len(rows) == 1 and rows[0]["prizeKey"] == shown
    async with s.step("pages"):
        for path in (
            "/console/c/wheels",
            "/console/members?q=b",
            "/console/events",
            "/console/apikeys",
            "/console/c/checkin-campaigns",
            "/console/c/wheels/versions?key=lucky",
        ):
            await page.goto(server + path)
            await page.screenshot(
                path=str(
                    ARTIFACTS
                    / f"console-page-{path.strip('/').replace('/', '_').replace('?', '_')}.png"
                ),
                full_page=True,
            )
    async with s.step("english"):
        await page.click("#lang")
        await page.wait_for_selector("text=Sign out")
    async with s.step("signed-out"):
        await page.click("#sign-out")
        await page.wait_for_url(server + "/console/login")
        await page.goto(server + "/console")
        assert page.url.endswith("/console/login")
    await phone.close()
    await op_ctx.close()


async def _console_login(page, server: str, api_key: str) -> None:  # type: ignore[no-untyped-def]
    await page.goto(server + "/console/login")
    await page.fill("#api-key", api_key)
    await page.click("#sign-in")
    await page.wait_for_url(server + "/console")


async def _save_config(page, server: str, kind: str, key: str | None, doc: str) -> None:  # type: ignore[no-untyped-def]
    await page.goto(f"{server}/console/c/{kind}/edit")
    if key is not None:
        await page.fill("#config-key", key)
    await page.fill("#config-text", doc)
    await page.click("#save-config")
    await page.wait_for_load_state()


async def test_console_editors_history_replay_and_member_ritual(  # type: ignore[no-untyped-def]
    server, browser, ctx, client
) -> None:
    """Levels, teams, PKs and the ritual from the console's editors (problems next to the
    fields, what was typed kept), their version history, per-tenant dead-letter replay; then a
    member completes the ritual on /h5, sees the member number, joins a team in the PK."""
    tenant = await new_tenant(ctx, client)
    other = await new_tenant(ctx, client)
    now = datetime.now(UTC).replace(microsecond=0)
    healthy = sorted(ctx.dispatcher.handlers)[0]
    letters = {}
    for t in (tenant, other):
        async with ctx.db.transaction() as conn:
            await conn.execute(
                "INSERT INTO outbox (event_id, tenant_id, type, payload, occurred_at) "
                "VALUES (gen_random_uuid(), $1, 'test.dead', '{}'::jsonb, $2)",
                t.id,
                now,
            )
            oid = await conn.fetchval(
                "SELECT max(id) FROM outbox WHERE tenant_id = $1 AND type = 'test.dead'", t.id
            )
            letters[t.id] = await conn.fetchval(
                "INSERT INTO outbox_dead_letters (subscriber, outbox_id, attempts, error, "
                "created_at) VALUES ($1, $2, 5, 'RuntimeError(boom)', $3) RETURNING id",
                healthy,
                oid,
                now,
            )

    op_ctx = await browser.new_context(viewport={"width": 1280, "height": 900})
    page = await op_ctx.new_page()
    s = Steps(page, "editors")
    async with s.step("signed-in"):
        await _console_login(page, server, tenant.api_key)
    async with s.step("levels-problems"):
        bad = '{"levels": [{"name": "", "threshold": -5}], "validity": {"mode": "sometimes"}}'
        await _save_config(page, server, "levels", None, bad)
        await page.wait_for_selector("#problems")
        paths = set(
            await page.locator("#fields .field-error").evaluate_all(
                "els => els.map(e => e.dataset.path)"
            )
        )
        assert {"levels[0].name", "levels[0].threshold"} <= paths or "validity.mode" in paths
        assert await page.locator("tr[data-field=levels].bad-row").count() == 1
        assert await page.input_value("#config-text") == bad  # what was typed is kept
        assert await page.input_value("#config-key") == "ladder"
    async with s.step("levels-saved"):
        await page.fill(
            "#config-text",
            '{"levels": [{"name": "新朋友", "threshold": 0}, {"name": "银卡", "threshold": 100}]}',
        )
        await page.click("#save-config")
        await page.wait_for_selector("#saved")
    async with s.step("teams-saved"):
        for key, name in (("east", "东区"), ("west", "西区")):
            await _save_config(
                page,
                server,
                "teams",
                key,
                f'{{"name": "{name}", "kind": "store", "teamSet": "stores", "open": true}}',
            )
            await page.wait_for_selector("#saved")
        # The "new" form never overwrites a taken key; the team is changed where it is open.
        doc = '{"name": "东区门店", "kind": "store", "teamSet": "stores", "open": true}'
        await _save_config(page, server, "teams", "east", doc)
        await page.wait_for_selector("#problems")
        assert "/console/c/teams/edit?key=east" in await page.locator("#problems").inner_text()
        await page.goto(server + "/console/c/teams/edit?key=east")
        await page.fill("#config-text", doc)
        await page.click("#save-config")
        await page.wait_for_selector("#saved")
        await page.goto(server + "/console/c/teams")
        assert await page.locator("#config-list tr[data-key]").count() == 2
    async with s.step("team-history"):
        await page.click("tr[data-key=east] a.versions")
        await page.wait_for_selector("#versions")
        assert await page.locator("#versions tr[data-version]").count() == 2
        assert "name" in await page.locator("#versions tr[data-version]").first.inner_text()
    async with s.step("pk-problems"):
        start, end = (now - timedelta(hours=1)).isoformat(), (now + timedelta(days=3)).isoformat()
        doc = (
            f'{{"name": "门店 PK", "teams": ["east", "ghost"], "metric": "points", '
            f'"startsAt": "{start}", "endsAt": "{end}"}}'
        )
        await _save_config(page, server, "pks", "duel", doc)
        await page.wait_for_selector("#problems")
        assert "ghost" in await page.locator("#problems").inner_text()
        assert await page.input_value("#config-text") == doc
    async with s.step("pk-saved"):
        await page.fill("#config-text", doc.replace('"ghost"', '"west"'))
        await page.click("#save-config")
        await page.wait_for_selector("#saved")
    async with s.step("ritual-saved"):
        await _save_config(
            page,
            server,
            "rituals",
            None,
            '{"title": "欢迎加入", "steps": [{"kind": "covenant", "key": "covenant", '
            '"title": "会员公约", "text": "一起成长", "version": "v1"}, {"kind": "profile", '
            '"key": "profile", "title": "介绍一下你自己", "fields": ["nickname"], '
            '"requiredFields": ["nickname"]}], "gift": {"points": 30}}',
        )
        await page.wait_for_selector("#saved")
    async with s.step("dead-letters-replayed"):
        await page.goto(server + "/console/events")
        assert await page.locator("#dead-letters tr[data-id]").count() == 1
        await page.click("#replay")
        await page.wait_for_selector("#replay-result")
        assert "1" in await page.locator("#replay-result").inner_text()
        assert await page.locator("#dead-letters tr[data-id]").count() == 0
        async with ctx.db.connection() as conn:
            left = await conn.fetchval(
                "SELECT count(*) FROM outbox_dead_letters WHERE id = ANY($1::bigint[])",
                list(letters.values()),
            )
        assert left == 1  # the other tenant's letter is untouched

    phone = await browser.new_context(
        viewport={"width": 390, "height": 844}, device_scale_factor=2, is_mobile=True
    )
    m = await phone.new_page()
    ms = Steps(m, "h5-ritual")
    async with ms.step("ritual-shown"):
        await m.goto(f"{server}/h5?app={tenant.app_id}&pk=duel")
        await m.fill("#openid", "ritual-member")
        await m.click("#login-btn")
        await m.wait_for_selector("#ritual-panel:not([hidden])")
        assert "完成入会" in await m.locator("#me-no").inner_text()
    async with ms.step("covenant-needs-accept"):
        await m.click("#step-btn")
        await m.wait_for_selector("#ritual-error:not([hidden])")
        await m.check("input[name=accept]")
        await m.click("#step-btn")
        await m.wait_for_selector("input[name=nickname]")
    async with ms.step("joined"):
        await m.fill("input[name=nickname]", "小红")
        await m.click("#step-btn")
        await m.wait_for_selector("#ritual-panel", state="hidden")
        await m.wait_for_function("document.getElementById('me-no').textContent.startsWith('NO.')")
        assert await m.locator("#me-name").inner_text() == "小红"
        await dismiss_ceremonies(m)
    async with ms.step("pk-joined"):
        await m.wait_for_selector("#pk-panel:not([hidden])")
        await m.click("#pk-teams li[data-team=east] button.join")
        await m.wait_for_selector("#pk-teams li.mine[data-team=east]")
    await phone.close()
    await op_ctx.close()


async def test_h5_reaches_every_live_wheel_and_the_pk(server, browser, ctx, client) -> None:  # type: ignore[no-untyped-def]
    """/h5 with no keys in the URL: a chooser lists every live wheel of /v1/me/summary
    (`campaigns.wheels`), picking one shows it; the PK panel shows the live PK
    (`campaigns.pks`)."""
    tenant = await new_tenant(ctx, client)
    now = datetime.now(UTC).replace(microsecond=0)
    prizes = [
        {"key": "pts", "name": "10 积分", "kind": "points", "weight": 50, "value": 10},
        {"key": "thanks", "name": "谢谢参与", "kind": "nothing", "weight": 50},
    ]
    async with httpx.AsyncClient(base_url=server, headers=tenant.admin, timeout=30) as api:
        for key, name in (("first", "一号转盘"), ("second", "二号转盘")):
            r = await api.put(
                f"/admin/v1/wheels/{key}",
                json={
                    "name": name,
                    "startsAt": (now - timedelta(days=1)).isoformat(),
                    "endsAt": (now + timedelta(days=5)).isoformat(),
                    "state": "live",
                    "freeSpinsPerDay": 1,
                    "consolationPrize": "thanks",
                    "prizes": prizes,
                },
            )
            assert r.status_code == 200, r.text
        for key in ("east", "west"):
            body = {"name": key, "kind": "store", "teamSet": "stores", "open": True}
            r = await api.put(f"/admin/v1/teams/{key}", json=body)
            assert r.status_code == 200, r.text
        r = await api.put(
            "/admin/v1/pks/duel",
            json={
                "name": "门店 PK",
                "teams": ["east", "west"],
                "metric": "points",
                "startsAt": (now - timedelta(hours=1)).isoformat(),
                "endsAt": (now + timedelta(days=3)).isoformat(),
            },
        )
        assert r.status_code == 200, r.text
    phone = await browser.new_context(
        viewport={"width": 390, "height": 844}, device_scale_factor=2, is_mobile=True
    )
    m = await phone.new_page()
    ms = Steps(m, "h5-pick")
    async with ms.step("wheels-listed"):
        await m.goto(f"{server}/h5?app={tenant.app_id}")
        await m.fill("#openid", "picker-member")
        await m.click("#login-btn")
        await m.wait_for_selector("#wheel-pick:not([hidden])")
        await dismiss_ceremonies(m)
        keys = await m.locator("#wheel-pick button").evaluate_all(
            "els => els.map(e => e.dataset.key)"
        )
        assert sorted(keys) == ["first", "second"]
    async with ms.step("second-wheel"):
        other = next(k for k in keys if k != keys[0])
        await m.click(f"#wheel-pick button[data-key={other}]")
        name = {"first": "一号转盘", "second": "二号转盘"}[other]
        await m.wait_for_function(f"document.getElementById('wheel-name').textContent === '{name}'")
        await m.click("#spin-btn")
        await m.wait_for_selector("#spin-note[data-prize]", timeout=15000)
    async with ms.step("pk-shown"):
        await m.wait_for_selector("#pk-panel:not([hidden])")
        assert await m.locator("#pk-name").inner_text() == "门店 PK"
        assert await m.locator("#pk-teams li").count() == 2
    async with ctx.db.connection() as conn:
        spun = await conn.fetch(
            "SELECT w.key FROM wheel_draws s JOIN wheels w ON w.id = s.wheel_id "
            "WHERE w.tenant_id = $1",
            tenant.id,
        )
    assert [r["key"] for r in spun] == [other]
    await phone.close()
