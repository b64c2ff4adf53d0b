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
    async with s.step("wheel-published"):
        await page.click("#publish")
        await page.wait_for_selector("#saved")
        assert await page.locator("#wheel-status").inner_text() == "open"

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
