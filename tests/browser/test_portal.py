"""In a real browser, with the keyboard alone: a citizen logs in with the code from the
development outbox, finds the case that waits for him, and sends the document it asks for;
a member of staff logs in, sees the queue and picks up the waiting chat. No page breaks its
Content-Security-Policy."""

from __future__ import annotations

import re
from pathlib import Path

import pyotp
from playwright.async_api import Browser, ConsoleMessage, Page, expect

from tests.browser.conftest import Hub
from tests.web.world import CHAT_TEXT, PNG, STAFF_EMAIL, WHAT_IS_ASKED


async def tab_to(page: Page, selector: str, limit: int = 30) -> None:
    """Press Tab until the element ``selector`` has the focus, as a keyboard user would."""
    target = page.locator(selector)
    for _ in range(limit):
        await page.keyboard.press("Tab")
        if await target.evaluate("element => element === document.activeElement"):
            return
    raise AssertionError(f"{selector} cannot be reached with the Tab key")


def policy_violations(page: Page) -> list[str]:
    """Console errors about the Content-Security-Policy, collected as the page runs."""
    found: list[str] = []

    def seen(message: ConsoleMessage) -> None:
        if "Content Security Policy" in message.text:
            found.append(message.text)

    page.on("console", seen)
    return found


async def code_from_outbox(page: Page, address: str) -> str:
    """The login code in the newest mail to ``address`` on the development outbox page."""
    for _ in range(50):
        await page.goto("/dev/outbox?channel=email")
        articles = page.locator("article", has_text=address)
        if await articles.count():
            found = re.search(r"\b(\d{6})\b", await articles.first.inner_text())
            if found:
                return found.group(1)
        await page.wait_for_timeout(100)
    raise AssertionError("no login code arrived in the development outbox")


async def test_a_citizen_logs_in_finds_his_case_and_sends_the_document_by_keyboard(
    hub: Hub, browser: Browser, tmp_path: Path
) -> None:
    context = await hub.context(browser)
    page = await context.new_page()
    violations = policy_violations(page)
    await page.goto("/my-cases")
    await expect(page).to_have_url(re.compile(r"/login\?next=/my-cases$"))

    await page.keyboard.press("Tab")
    await expect(page.locator(".skip-link")).to_be_focused()
    await tab_to(page, "#address")
    await page.keyboard.type(hub.world.citizen_email)
    await page.keyboard.press("Enter")
    await expect(page.locator("h1")).to_have_text("Vul uw code in")

    outbox = await context.new_page()
    code = await code_from_outbox(outbox, hub.world.citizen_email)
    await tab_to(page, "#code")
    await page.keyboard.type(code)
    await page.keyboard.press("Enter")
    await expect(page).to_have_url(re.compile(r"/my-cases$"))
    await expect(page.locator("li.card")).to_have_count(3)
    await expect(page.locator("li.your-turn")).to_have_count(1)

    await tab_to(page, "li.your-turn h3 a")
    await page.keyboard.press("Enter")
    await expect(page).to_have_url(re.compile(f"/cases/{hub.world.waiting_case_id}$"))
    await expect(page.locator(".tracker [aria-current=step]")).to_contain_text("Vraag ontvangen")
    action = page.locator(".call-to-action")
    await expect(action).to_contain_text(WHAT_IS_ASKED)
    await expect(action).to_contain_text("Doe dit vóór")
    await expect(page.locator("#contact-heading + p")).to_have_text(
        "Sanne de Wit van Dienst Toeslagen behandelt uw zaak."
    )

    scan = tmp_path / "huurcontract.png"
    scan.write_bytes(PNG)
    await tab_to(page, "#file")
    async with page.expect_file_chooser() as chooser:
        await page.keyboard.press("Space")
    await (await chooser.value).set_files(scan)
    await tab_to(page, ".call-to-action button[type=submit]")
    await page.keyboard.press("Enter")
    await expect(page.locator(".notice[role=status]")).to_have_text(
        "Dank u wel. We hebben uw document ontvangen."
    )
    await expect(page.locator(".call-to-action")).to_have_count(0)
    await expect(page.locator("#documents-heading + ul")).to_contain_text("huurcontract.png")
    await expect(page.locator("dl.facts")).to_contain_text("Aan ons")
    assert violations == []
    await context.close()


async def test_a_wrong_file_is_refused_with_a_message_that_takes_the_focus(
    hub: Hub, browser: Browser, tmp_path: Path
) -> None:
    context = await hub.context(browser, as_="citizen", lang="en")
    page = await context.new_page()
    await page.goto(f"/cases/{hub.world.waiting_case_id}")
    notes = tmp_path / "notes.txt"
    notes.write_text("not a scan")
    await page.locator("#file").set_input_files(notes)
    await page.locator(".call-to-action button[type=submit]").click()
    summary = page.locator(".error-summary")
    await expect(summary).to_contain_text("We cannot take this file.")
    await expect(summary).to_be_focused()
    await context.close()


async def test_staff_log_in_by_keyboard_see_what_waits_and_pick_up_a_chat(
    hub: Hub, browser: Browser
) -> None:
    context = await hub.context(browser, lang="en")
    page = await context.new_page()
    violations = policy_violations(page)
    await page.goto("/console")
    await expect(page).to_have_url(re.compile(r"/console/login\?next=/console$"))
    await tab_to(page, "#email")
    await page.keyboard.type(STAFF_EMAIL)
    await page.keyboard.press("Tab")
    await page.keyboard.type(hub.world.staff_password)
    await page.keyboard.press("Tab")
    await page.keyboard.type(pyotp.TOTP(hub.world.totp_secret).now())
    await page.keyboard.press("Enter")
    await expect(page).to_have_url(re.compile(r"/console$"))
    await expect(page.locator("h1")).to_have_text("Queue of Dienst Toeslagen")
    await expect(page.locator("#chats-heading")).to_have_text("Waiting chats (1)")
    await expect(page.locator("#messages-heading")).to_have_text("Unanswered messages (1)")
    messages = page.locator("section[aria-labelledby=messages-heading] tbody tr")
    await expect(messages).to_contain_text("Vraag over huur")
    await expect(messages).to_contain_text("Email")

    await tab_to(page, "section[aria-labelledby=chats-heading] button[type=submit]")
    await page.keyboard.press("Enter")
    await expect(page).to_have_url(re.compile(f"/console/cases/{hub.world.chat_case_id}"))
    await expect(page.locator(".notice[role=status]")).to_contain_text("You have picked up")
    await expect(page.locator("ol.thread")).to_contain_text(CHAT_TEXT)
    assert violations == []
    await context.close()
