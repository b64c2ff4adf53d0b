"""The docs UI works with no internet: a real browser, every non-loopback request blocked.

`engage serve` runs on a free loopback port against the suite's database and Redis; Debian's
chromium (installed by .ci/run) is driven by Playwright. The page may load only what the
service itself serves (the Swagger UI assets come from the openapi-ui-bundles package); the
test asserts the operations list renders and that nothing was asked of any other host.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest

from tests.conftest import RUN_ID

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
ROOT = Path(__file__).resolve().parent.parent
LOOPBACK = {"127.0.0.1", "localhost", "[::1]", "::1"}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def served(servers: dict[str, str]) -> Iterator[str]:
    port = _free_port()
    data_dir = tempfile.mkdtemp(prefix="engage-docs-ui-")
    env = {
        **os.environ,
        "ENGAGE_ENV": "test",
        "ENGAGE_DATABASE_URL": servers["database_url"],
        "ENGAGE_REDIS_URL": servers["redis_url"],
        "ENGAGE_REDIS_PREFIX": f"t{RUN_ID}ui",
        "ENGAGE_DATA_DIR": data_dir,
        "ENGAGE_WORKERS": "1",
        "ENGAGE_LOG_FORMAT": "json",
    }
    proc = subprocess.Popen(
        [
            str(Path(sys.executable).parent / "engage"),
            "serve",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
        ],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        start_new_session=True,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        # A loaded 2-core box (other suites running) can take well over a minute to import
        # and start a server: wait for readiness, then for the OpenAPI document the page
        # fetches (built on first request), so the browser's own timeouts judge the page.
        deadline = time.monotonic() + 240
        while True:
            try:
                if httpx.get(f"{base}/health/ready", timeout=5).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"engage serve did not start: {proc.stderr.read()[-2000:]!r}")  # type: ignore[union-attr]
            time.sleep(0.3)
        schema = httpx.get(f"{base}/schema/openapi.json", timeout=120)
        assert schema.status_code == 200, schema.text[:300]
        yield base
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=10)
        shutil.rmtree(data_dir, ignore_errors=True)


def _open(base: str, path: str, ready_selector: str) -> tuple[Any, list[str], list[str]]:
    from playwright.sync_api import sync_playwright

    blocked: list[str] = []
    loaded: list[str] = []
    with sync_playwright() as pw:
        # Generous waits (a loaded box starts chromium and runs a 1.5 MB bundle slowly); what
        # is asserted is the rendered list and the requests made, not how fast.
        browser = pw.chromium.launch(
            executable_path=CHROMIUM, args=["--no-sandbox"], timeout=180_000
        )
        try:
            page = browser.new_page()
            page.set_default_timeout(120_000)
            page.set_default_navigation_timeout(120_000)

            def gate(route: Any) -> None:
                url = route.request.url
                host = urlsplit(url).hostname or ""
                if url.startswith(("data:", "blob:")) or host in LOOPBACK:
                    loaded.append(url)
                    route.continue_()
                else:
                    blocked.append(url)
                    route.abort()

            page.route("**/*", gate)
            page.goto(base + path, wait_until="load")
            page.wait_for_selector(ready_selector, timeout=120_000)
            texts = page.locator(ready_selector).all_inner_texts()
        finally:
            browser.close()
    return texts, blocked, loaded


@pytest.mark.skipif(
    not Path(CHROMIUM).exists() and not os.environ.get("CI"),
    reason="chromium is not installed (.ci/run installs it; CI never skips)",
)
@pytest.mark.parametrize("path", ["/schema", "/schema/swagger"])
@pytest.mark.timeout(900)
def test_swagger_ui_renders_the_operations_offline(served: str, path: str) -> None:
    texts, blocked, loaded = _open(served, path, ".opblock-summary-path")
    assert "/v1/wheels/{wheelKey}/spins" in [t.strip().replace("\u200b", "") for t in texts]
    assert len(texts) > 40
    assert blocked == [], f"the docs asked other hosts: {blocked}"
    assert any(u.endswith("/schema/assets/swagger/swagger-ui-bundle.js") for u in loaded)
