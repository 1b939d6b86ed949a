"""In a real browser: a citizen gives a neighbour a mandate, the neighbour switches to act for
him — every page says so — finds his case and sends the document it waits for; the citizen
revokes the mandate and the neighbour can no longer open the case. A citizen withdraws a
permission and the agency's next notice on that topic is not sent. The new pages, in the
states these flows leave them, pass axe-core in both languages and at 320 px."""

from __future__ import annotations

import re
import uuid
from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.async_api import Browser, BrowserContext, expect
from sqlmodel import select

from hub.models import Party
from tests.browser.conftest import Hub
from tests.browser.test_accessibility import check
from tests.browser.test_portal import policy_violations, tab_to
from tests.builders import bearer, key_for, token_for
from tests.web.world import PNG, WHAT_IS_ASKED


async def petra(hub: Hub) -> Party:
    async with hub.database.session() as session:
        return (await session.exec(select(Party).where(Party.name == "Petra de Vries"))).one()


async def logged_in_as(
    hub: Hub, browser: Browser, party_id: uuid.UUID, lang: str
) -> BrowserContext:
    context = await hub.context(browser, lang=lang)
    token = await token_for(hub.database, "citizen", party_id)
    await context.add_cookies([{"name": "hub_session", "value": token, "url": hub.url}])
    return context


async def grant(hub: Hub, context: BrowserContext, representative: Party, name: str) -> None:
    page = await context.new_page()
    await page.goto("/representation")
    await page.fill("#bsn", representative.bsn or "")
    await page.fill("#name", name)
    await page.click("#give-heading ~ form button[type=submit]")


async def test_a_representative_acts_for_a_party(
    hub: Hub, browser: Browser, tmp_path: Path
) -> None:
    world = hub.world
    neighbour = await petra(hub)
    jan = await hub.context(browser, as_="citizen")
    page = await jan.new_page()
    await page.goto("/representation")
    await page.fill("#bsn", neighbour.bsn or "")
    await page.fill("#name", "Petra de Vries")
    await page.check("#scope-all")
    await page.get_by_role("button", name="Machtiging geven").click()
    await expect(page.locator(".notice[role=status]")).to_have_text("De machtiging is bewaard.")
    await expect(page.locator("#given-heading + ul")).to_contain_text("Petra de Vries")

    representative = await logged_in_as(hub, browser, neighbour.id, "nl")
    other = await representative.new_page()
    violations = policy_violations(other)
    await other.goto("/representation")
    # Switching is done with the keyboard alone.
    await tab_to(other, "form[action='/representation/act'] button")
    await expect(other.locator(":focus")).to_have_text("Handel namens Jan Jansen")
    await other.keyboard.press("Enter")
    await expect(other).to_have_url(re.compile(r"/representation/cases$"))
    banner = other.locator("#acting-for")
    await expect(banner).to_contain_text("U handelt namens Jan Jansen.")
    await expect(other.locator("h1")).to_have_text("Zaken van Jan Jansen")
    await other.locator("li.your-turn h2 a").click()
    await expect(other).to_have_url(re.compile(f"/cases/{world.waiting_case_id}$"))
    await expect(banner).to_contain_text("U handelt namens Jan Jansen.")
    await expect(other.locator(".call-to-action")).to_contain_text(WHAT_IS_ASKED)
    scan = tmp_path / "huurcontract-jan.png"
    scan.write_bytes(PNG)
    await other.locator("#file").set_input_files(scan)
    await other.locator(".call-to-action button[type=submit]").click()
    await expect(other.locator(".notice[role=status]")).to_have_text(
        "Dank u wel. We hebben uw document ontvangen."
    )
    await expect(other.locator("#documents-heading + ul")).to_contain_text("huurcontract-jan.png")
    await expect(other.locator(".call-to-action")).to_have_count(0)

    # Jan sees what his representative sent, and who read his case.
    await page.goto(f"/cases/{world.waiting_case_id}")
    await expect(page.locator("#documents-heading + ul")).to_contain_text("huurcontract-jan.png")
    await page.goto("/my-data")
    await expect(page.locator("main")).to_contain_text("Petra de Vries")

    await page.goto("/representation")
    await page.get_by_role("button", name="Machtiging van Petra de Vries intrekken").click()
    await expect(page.locator(".notice[role=status]")).to_contain_text(
        "De machtiging is ingetrokken."
    )

    refused = await other.goto(f"/cases/{world.waiting_case_id}")
    assert refused is not None and refused.status == 404
    await expect(other.locator("#acting-for")).to_have_count(0)
    assert violations == []
    await jan.close()
    await representative.close()


async def test_a_citizen_withdraws_consent_and_a_notice_for_that_topic_is_then_not_sent(
    hub: Hub, browser: Browser
) -> None:
    world = hub.world
    context = await hub.context(browser, as_="citizen")
    page = await context.new_page()
    await page.goto("/permissions")
    await expect(page.locator(f"#topic-{world.topic_id}-yes")).to_be_checked()
    await page.check(f"#topic-{world.topic_id}-no")
    await page.get_by_role("button", name="Bewaar mijn keuzes").click()
    await expect(page.locator(".notice[role=status]")).to_have_text("Uw keuzes zijn bewaard.")
    await expect(page.locator(f"#topic-{world.topic_id}-no")).to_be_checked()

    async with hub.database.session() as session:
        jan = await session.get(Party, world.citizen_id)
        assert jan is not None
    agency = bearer(await key_for(hub.database, world.agency_id))
    async with httpx.AsyncClient(base_url=hub.url) as api:
        # Jan's cases sent him mail before: what the outbox held until now.
        before = {item["id"] for item in (await api.get("/api/dev/outbox")).json()}
        template = await api.put(
            "/api/notice-templates/huurtoeslag-recht/email/nl",
            headers=agency,
            json={"subject": "Huurtoeslag 2027", "body": "U hebt misschien recht op huurtoeslag."},
        )
        assert template.status_code == 200, template.text
        sent = await api.post(
            "/api/notices",
            headers=agency,
            json={"bsn": jan.bsn, "topic": "huurtoeslag-recht", "template": "huurtoeslag-recht"},
        )
        assert sent.status_code == 201, sent.text
        assert (sent.json()["status"], sent.json()["reason"]) == ("not-sent", "no_consent")
        # The worker runs every 0.1 s: given time, it would have delivered anything queued.
        await page.wait_for_timeout(1000)
        outbox = (await api.get("/api/dev/outbox")).json()
    assert [item for item in outbox if item["id"] not in before] == []
    assert "Huurtoeslag 2027" not in str(outbox)
    await page.goto("/notices")
    await expect(page.locator("main")).not_to_contain_text("Huurtoeslag 2027")
    await context.close()


# The pages' HTML does not depend on the database, so this check runs on one.
@pytest.mark.parametrize("database", ["sqlite"], indirect=True)
async def test_the_representation_and_preferences_pages_are_accessible_in_every_state(
    hub: Hub, browser: Browser, axe_source: str
) -> None:
    neighbour = await petra(hub)
    problems: dict[str, Any] = {}
    for lang, name in (("nl", "petra de vries"), ("en", "Petra de Vries")):
        jan = await hub.context(browser, as_="citizen", lang=lang)
        await grant(hub, jan, neighbour, "Someone Else")  # refused: the form with its error
        page = jan.pages[-1]
        await page.wait_for_selector(".error-summary")
        problems.update(await check(page, axe_source, f"{lang} mandate refused"))
        await grant(hub, jan, neighbour, name)
        page = jan.pages[-1]
        await page.wait_for_selector("#given-heading + ul")
        problems.update(await check(page, axe_source, f"{lang} mandate given"))

        preferences = await jan.new_page()
        await preferences.goto("/preferences")
        await preferences.check("#channel-sms")
        await preferences.locator("main button[type=submit]").click()
        await preferences.wait_for_selector(".error-summary")
        problems.update(await check(preferences, axe_source, f"{lang} preference refused"))

        representative = await logged_in_as(hub, browser, neighbour.id, lang)
        acting = await representative.new_page()
        await acting.goto("/representation")
        await acting.locator("form[action='/representation/act'] button").first.click()
        await acting.wait_for_selector("#acting-for")
        problems.update(await check(acting, axe_source, f"{lang} acting for"))
        await acting.goto("/representation")
        problems.update(await check(acting, axe_source, f"{lang} representation while acting"))
        await jan.close()
        await representative.close()
    assert problems == {}
