"""A real hub (uvicorn on a free port, with its delivery worker) and Debian's chromium driven
by Playwright. Without chromium or axe-core these tests are skipped — except in CI, where
``scripts/test.sh`` installs both, so their absence is a failure."""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from fastapi import FastAPI
from playwright.async_api import (
    Browser,
    BrowserContext,
    Playwright,
    async_playwright,
    expect,
)

from hub.app import create_app
from hub.config import Settings
from hub.db import Database
from hub.web.i18n import LANGUAGE_COOKIE
from tests.builders import token_for
from tests.live.harness import start_server
from tests.web.world import PortalWorld, make_portal_world

CHROMIUM = Path("/usr/bin/chromium")
# CI shares two cores with everything else: wait longer than Playwright's 5 s for a page to
# show what it should, so that a busy machine is not mistaken for a broken page.
SLOW_MACHINE_MS = 20_000
expect.set_options(timeout=SLOW_MACHINE_MS)
AXE = Path(__file__).resolve().parents[2] / "node_modules" / "axe-core" / "axe.min.js"


def _missing(what: str) -> None:
    if os.environ.get("CI") == "true":
        pytest.fail(f"CI=true but {what} is missing: scripts/test.sh installs it")
    pytest.skip(f"{what} is missing: scripts/test.sh installs it")


@pytest.fixture(scope="session")
async def playwright() -> AsyncIterator[Playwright]:
    async with async_playwright() as driver:
        yield driver


@pytest.fixture(scope="session")
def chromium() -> Path:
    if not CHROMIUM.exists():
        _missing("Debian's chromium (/usr/bin/chromium)")
    return CHROMIUM


@pytest.fixture(scope="session")
async def browser(playwright: Playwright, chromium: Path) -> AsyncIterator[Browser]:
    # --no-sandbox: the tests run as root in CI, where chromium's sandbox cannot start.
    launched = await playwright.chromium.launch(
        executable_path=str(chromium), args=["--no-sandbox"]
    )
    yield launched
    await launched.close()


@pytest.fixture(scope="session")
def axe_source() -> str:
    if not AXE.exists():
        _missing("axe-core (node_modules/axe-core)")
    return AXE.read_text()


@dataclass
class Hub:
    app: FastAPI
    url: str
    world: PortalWorld
    database: Database

    async def context(
        self, browser: Browser, *, as_: str = "anyone", lang: str = "nl"
    ) -> BrowserContext:
        """A fresh browser profile with the language chosen, logged in ``as_`` citizen or
        staff (with a session cookie, as the login page would have set it)."""
        context = await browser.new_context(base_url=self.url)
        context.set_default_timeout(SLOW_MACHINE_MS)
        cookies = [{"name": LANGUAGE_COOKIE, "value": lang, "url": self.url}]
        if as_ == "citizen":
            token = await token_for(self.database, "citizen", self.world.citizen_id)
            cookies.append({"name": "hub_session", "value": token, "url": self.url})
        elif as_ == "staff":
            token = await token_for(self.database, "staff", self.world.staff_id)
            cookies.append({"name": "hub_session", "value": token, "url": self.url})
        await context.add_cookies(cookies)  # type: ignore[arg-type]
        return context


@pytest.fixture
async def hub(database: Database, tmp_path: Path) -> AsyncIterator[Hub]:
    """The hub as ``hub serve`` runs it, with its worker delivering to the development
    outbox, and the people and cases of ``make_portal_world``."""
    settings = Settings(
        environment="test",
        data_dir=tmp_path,
        run_worker=True,
        worker_interval_seconds=0.1,
        base_url="http://127.0.0.1",
    )
    world = await make_portal_world(database)
    app = create_app(settings, database=database)
    server, task, port = await start_server(app)
    yield Hub(app, f"http://127.0.0.1:{port}", world, database)
    server.should_exit = True
    await asyncio.wait_for(task, 10)
