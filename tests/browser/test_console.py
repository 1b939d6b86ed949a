"""The staff console in a real browser: the queue warns of a message past the service norm;
staff open its case, start from a canned reply, send it by email and find the mail in the
development outbox; write an internal note the citizen's page never shows; then, at the
counter desk, look the citizen up, record the visit and print the status summary. No page
breaks its Content-Security-Policy."""

from __future__ import annotations

import datetime as dt
import re

from playwright.async_api import Browser, Page, expect
from sqlmodel import select

from hub.db import utcnow
from hub.models import Message, Party
from tests.browser.conftest import Hub
from tests.browser.test_portal import policy_violations

NOTE = "Intern: de verhuurder belt morgen terug."


async def mail_in_outbox(page: Page, address: str, text: str) -> None:
    """Wait until the worker has put a mail to ``address`` with ``text`` in the outbox."""
    for _ in range(100):
        await page.goto("/dev/outbox?channel=email")
        if await page.locator("article", has_text=address).filter(has_text=text).count():
            return
        await page.wait_for_timeout(100)
    raise AssertionError(f"no mail to {address} with {text!r} in the development outbox")


async def test_staff_answer_a_late_mail_note_it_and_help_the_citizen_at_the_desk(
    hub: Hub, browser: Browser
) -> None:
    world = hub.world
    async with hub.database.session() as session:
        mail = (
            await session.exec(select(Message).where(Message.case_id == world.mail_case_id))
        ).one()
        mail.created_at = utcnow() - dt.timedelta(hours=30)
        session.add(mail)
        jan = await session.get(Party, world.citizen_id)
        assert jan is not None and jan.bsn is not None
        bsn = jan.bsn

    staff = await hub.context(browser, as_="staff")
    page = await staff.new_page()
    violations = policy_violations(page)
    await page.goto("/console")
    late = page.locator("tr.over-norm")
    await expect(late).to_have_count(1)
    await expect(late).to_contain_text("Over de norm")
    await expect(page.locator(".warning")).to_contain_text("1 bericht wacht al langer dan de norm.")

    await late.get_by_role("link").click()
    await expect(page).to_have_url(re.compile(f"/console/cases/{world.mail_case_id}$"))
    # Choosing a canned reply puts its text in the box at once (console.js).
    await page.select_option("#reply-template", "received")
    reply = page.locator("#reply-body")
    await expect(reply).to_have_value(re.compile(r"^Beste Jan Jansen,"))
    text = await reply.input_value()
    await reply.fill(text.replace("binnen 5 werkdagen", "morgen"))
    await page.select_option("#reply-channel", "email")
    await page.get_by_role("button", name="Antwoord versturen").click()
    await expect(page.locator("p.notice")).to_contain_text("Uw antwoord is verstuurd.")
    await expect(page.locator("ol.thread")).to_contain_text("laten u morgen weten")

    await page.fill("#note-text", NOTE)
    await page.get_by_role("button", name="Notitie bewaren").click()
    await expect(page.locator("li.message.internal")).to_contain_text(NOTE)

    outbox = await staff.new_page()
    await mail_in_outbox(outbox, world.citizen_email, "laten u morgen weten")

    citizen = await hub.context(browser, as_="citizen")
    own = await citizen.new_page()
    await own.goto(f"/cases/{world.mail_case_id}")
    await expect(own.locator("main")).to_contain_text("laten u morgen weten")
    await expect(own.locator("main")).not_to_contain_text("verhuurder belt")
    await citizen.close()

    # At the counter desk.
    await page.get_by_role("link", name="Balie").click()
    await page.fill("#desk-bsn", bsn)
    await page.select_option("#desk-purpose", "vragen-beantwoorden")
    await page.get_by_role("button", name="Opzoeken").click()
    await expect(page.locator("h1")).to_have_text("Jan Jansen")
    await page.locator(f'a[href="/console/desk/cases/{world.mail_case_id}"]').click()
    await page.select_option("#visit-document", "passport")
    await page.fill("#visit-topic", "Antwoord op de mail besproken")
    await page.get_by_role("button", name="Het bezoek vastleggen").click()
    await expect(page.locator("p.notice")).to_have_text("Het bezoek staat bij de zaak.")

    await page.get_by_role("link", name="Het overzicht van de zaak afdrukken").click()
    await expect(page.locator("h1")).to_have_text("Hoe gaat het met uw zaak")
    print_button = page.get_by_role("button", name="Afdrukken")
    await expect(print_button).to_be_visible()  # shown by console.js
    await page.emulate_media(media="print")
    await expect(page.locator(".site-header")).to_be_hidden()
    await expect(print_button).to_be_hidden()
    await expect(page.locator("article.summary")).to_contain_text("Jan Jansen")
    assert violations == []
    await staff.close()
