"""Screenshots of the portal and the console, as a citizen and a member of staff see them.

Run it against a hub with the demo data (``./scripts/run.sh`` in another terminal):

    .venv/bin/python scripts/screenshots.py [--base-url http://127.0.0.1:8000] [--out screenshots]

It logs in as the demo citizen Jan Jansen (with a code it reads from the development outbox)
and as the demo staff member Sanne de Wit, and writes one PNG per page and language, at a
desktop width and at 320 px. Needs Debian's chromium (``apt-get install chromium``).
"""

from __future__ import annotations

import argparse
import asyncio
import re
from pathlib import Path

import httpx
import pyotp
from playwright.async_api import Browser, Page, async_playwright

from hub.demo import DEMO_PASSWORD, demo_totp_secret

CHROMIUM = "/usr/bin/chromium"
CITIZEN = "jan@example.nl"
STAFF = "sanne@toeslagen.demo"
WIDTHS = {"wide": 1200, "narrow": 320}


async def latest_code(base_url: str, address: str) -> str:
    """The newest login code sent to ``address``, from the development outbox."""
    async with httpx.AsyncClient(base_url=base_url) as client:
        for _ in range(50):
            entries = (await client.get("/api/dev/outbox", params={"limit": 20})).json()
            for entry in entries:
                found = re.search(r"\b(\d{6})\b", entry["body"])
                if entry["recipient"] == address and found:
                    return found.group(1)
            await asyncio.sleep(0.2)
    raise SystemExit(f"No login code for {address} arrived in the development outbox.")


async def shoot(page: Page, out: Path, name: str) -> None:
    for label, width in WIDTHS.items():
        await page.set_viewport_size({"width": width, "height": 900})
        path = out / f"{name}-{label}.png"
        await page.screenshot(path=str(path), full_page=True)
        print(path)


async def citizen_pages(
    browser: Browser, base_url: str, out: Path, lang: str, citizen: str
) -> None:
    context = await browser.new_context(base_url=base_url)
    page = await context.new_page()
    await page.goto(f"/language/{lang}?next=/login")
    await shoot(page, out, f"{lang}-login")
    await page.fill("#address", citizen)
    await page.click("form.form button[type=submit]")
    if await page.locator(".error-summary").count():
        # Five codes in a quarter of an hour is the most an address gets.
        raise SystemExit(f"No code for {citizen}: {await page.inner_text('.error-summary')}")
    await page.wait_for_selector("#code")
    await shoot(page, out, f"{lang}-login-code")
    await page.fill("#code", await latest_code(base_url, citizen))
    await page.click("form.form button[type=submit]")
    await page.wait_for_url("**/my-cases")
    await shoot(page, out, f"{lang}-my-cases")
    waiting = page.locator("li.your-turn h3 a").first
    if await waiting.count():
        await waiting.click()
        await page.wait_for_selector(".tracker")
        await shoot(page, out, f"{lang}-case-your-turn")
        await page.goto("/my-cases")
    other = page.locator("ul.cards li:not(.your-turn) h3 a").first
    if await other.count():
        await other.click()
        await page.wait_for_selector(".tracker")
        await shoot(page, out, f"{lang}-case")
    await page.goto("/my-data")
    await shoot(page, out, f"{lang}-my-data")
    for name in ("notices", "permissions"):
        await page.goto(f"/{name}")
        await shoot(page, out, f"{lang}-{name}")
    await context.close()


async def staff_pages(browser: Browser, base_url: str, out: Path, lang: str) -> None:
    context = await browser.new_context(base_url=base_url)
    page = await context.new_page()
    await page.goto(f"/language/{lang}?next=/console/login")
    await shoot(page, out, f"{lang}-staff-login")
    await page.fill("#email", STAFF)
    await page.fill("#password", DEMO_PASSWORD)
    await page.fill("#code", pyotp.TOTP(demo_totp_secret(STAFF)).now())
    await page.click("form.form button[type=submit]")
    await page.wait_for_url("**/console")
    await shoot(page, out, f"{lang}-console-queue")
    case = page.locator("main table a").first
    if await case.count():
        await case.click()
        await page.wait_for_selector("#thread-heading")
        await shoot(page, out, f"{lang}-console-case")
    await page.goto("/dev/outbox")
    await shoot(page, out, f"{lang}-dev-outbox")
    await context.close()


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--base-url", default="http://127.0.0.1:8000")
    parser.add_argument("--out", type=Path, default=Path("screenshots"))
    parser.add_argument("--citizen", default=CITIZEN, help="a demo citizen's email address")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        try:
            for lang in ("nl", "en"):
                await citizen_pages(browser, args.base_url, args.out, lang, args.citizen)
                await staff_pages(browser, args.base_url, args.out, lang)
        finally:
            await browser.close()


if __name__ == "__main__":
    asyncio.run(main())
