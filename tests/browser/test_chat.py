"""The live chat in a real browser, two people at once: a citizen starts a chat on his case; a
member of staff picks it up from the queue and opens the chat page; the citizen sees them come
in, type and answer — without a reload, and read out by the polite live region — and sees his
case's tracker change when staff ask him for something. The citizen's network then drops
while staff send two lines and he writes one: when it is back, all three appear, once each
and in order."""

from __future__ import annotations

import re
import uuid

import httpx
from playwright.async_api import Browser, Page, expect

from hub.models import Case
from tests.browser.conftest import Hub
from tests.browser.test_portal import policy_violations
from tests.builders import bearer, token_for

QUESTION = "Waarom krijg ik minder huurtoeslag?"
ANSWER = "Goedemiddag, ik zoek het voor u uit."
ASKED = "Uw huurcontract van 2026"
BACK = "Ik ben er weer."


async def following(page: Page) -> None:
    """Wait until the page's live chat follows the case over the socket."""
    await expect(page.locator("[data-live-chat]")).to_have_attribute("data-state", "following")


def lines(page: Page, text: str) -> object:
    return page.locator("ol.thread li.message", has_text=text)


async def test_a_citizen_and_staff_chat_live_and_nothing_is_lost_when_the_network_drops(
    hub: Hub, browser: Browser
) -> None:
    # The browser's pages come from the server's own address (a free port): let them open the
    # socket, as HUB_ALLOWED_ORIGINS would for a hub behind another name.
    hub.app.state.settings.allowed_origins.append(hub.url)
    world = hub.world
    async with hub.database.session() as session:
        case = await session.get(Case, world.mail_case_id)
        assert case is not None
        reference = case.reference

    citizen_context = await hub.context(browser, as_="citizen")
    citizen = await citizen_context.new_page()
    citizen_violations = policy_violations(citizen)
    await citizen.goto(f"/cases/{world.mail_case_id}")
    await following(citizen)
    await citizen.evaluate("() => { window.notReloaded = true; }")
    await citizen.fill("#chat-text", QUESTION)
    await citizen.click("#chat button[type=submit]")
    await expect(lines(citizen, QUESTION)).to_have_count(1)
    await expect(lines(citizen, QUESTION)).not_to_contain_text("Wordt verstuurd")
    await expect(citizen.locator("[data-chat-state]")).to_have_text(
        "Uw chat wacht op een medewerker."
    )

    staff_context = await hub.context(browser, as_="staff")
    staff = await staff_context.new_page()
    staff_violations = policy_violations(staff)
    await staff.goto("/console")
    row = staff.locator("section[aria-labelledby=chats-heading] tr", has_text=reference)
    action = await row.locator("form").get_attribute("action")
    assert action is not None
    found = re.fullmatch(r"/console/chats/([0-9a-f-]+)/pickup", action)
    assert found is not None
    conversation_id = uuid.UUID(found.group(1))
    await row.locator("button[type=submit]").click()
    await expect(staff).to_have_url(re.compile(f"/console/cases/{world.mail_case_id}"))
    await staff.click(f"main a[href='/console/chats/{conversation_id}']")
    await expect(staff).to_have_url(re.compile(f"/console/chats/{conversation_id}$"))
    await following(staff)
    await expect(lines(staff, QUESTION)).to_have_count(1)

    # The citizen sees who has his chat, and that they are in it.
    await expect(citizen.locator("[data-chat-state]")).to_have_text(
        "Sanne de Wit van Dienst Toeslagen helpt u."
    )
    await expect(citizen.locator("[data-presence]")).to_have_text("Sanne de Wit is in de chat.")
    await expect(staff.locator("[data-presence]")).to_have_text("Jan Jansen is in de chat.")

    await staff.locator("#chat-text").press_sequentially("Goedemiddag")
    await expect(citizen.locator("[data-typing]")).to_have_text("Sanne de Wit typt…")
    await staff.fill("#chat-text", ANSWER)
    await staff.click("#chat form[data-chat-form] button[type=submit]")
    await expect(lines(citizen, ANSWER)).to_have_count(1)
    await expect(lines(citizen, ANSWER).locator(".meta")).to_contain_text("Sanne de Wit")
    await expect(citizen.locator("[aria-live=polite]")).to_have_text(
        f"Nieuw bericht van Sanne de Wit: {ANSWER}"
    )
    await expect(citizen.locator("[data-typing]")).to_be_hidden()
    await expect(lines(staff, ANSWER)).to_have_count(1)

    # Staff ask the citizen for a document: his tracker shows it is his turn now.
    await expect(citizen.locator(".call-to-action")).to_have_count(0)
    await expect(citizen.locator("#case-status dl.facts")).to_contain_text("Aan ons")
    token = await token_for(hub.database, "staff", world.staff_id)
    async with httpx.AsyncClient(base_url=hub.url, headers=bearer(token)) as api:
        asked = await api.post(
            f"/api/cases/{world.mail_case_id}/actions",
            json={"kind": "request_information", "what": ASKED},
        )
        assert asked.status_code == 200, asked.text
    await expect(citizen.locator(".call-to-action")).to_contain_text(ASKED)
    await expect(citizen.locator("#case-status dl.facts")).to_contain_text("Aan u")
    await expect(citizen.locator("#case-status dl.facts")).not_to_contain_text("Aan ons")
    await expect(citizen.locator("[aria-live=polite]")).to_have_text(
        "Uw zaak is veranderd. Nu: Vraag ontvangen"
    )

    # The citizen's network drops while staff write twice; back online, both arrive once.
    await citizen_context.set_offline(True)
    await expect(citizen.locator("[data-live-chat]")).not_to_have_attribute(
        "data-state", "following"
    )
    for text in ("Eerste bericht terwijl u offline was", "Tweede bericht terwijl u offline was"):
        await staff.fill("#chat-text", text)
        await staff.click("#chat form[data-chat-form] button[type=submit]")
        await expect(lines(staff, text)).to_have_count(1)
        await expect(lines(staff, text)).not_to_contain_text("Wordt verstuurd")
    await expect(lines(citizen, "terwijl u offline was")).to_have_count(0)
    # What the citizen writes meanwhile waits, and goes once the network is back.
    await citizen.fill("#chat-text", BACK)
    await citizen.click("#chat button[type=submit]")
    await expect(lines(citizen, BACK)).to_contain_text("Nog niet verstuurd")
    await citizen_context.set_offline(False)
    await following(citizen)
    await expect(lines(citizen, "terwijl u offline was")).to_have_count(2)
    await expect(lines(citizen, BACK)).not_to_contain_text("Nog niet verstuurd")
    await expect(lines(citizen, BACK)).not_to_contain_text("Wordt verstuurd")
    await expect(lines(staff, BACK)).to_have_count(1)
    bodies = await citizen.locator("ol.thread li.message .body").all_inner_texts()
    assert bodies[-3:] == [
        "Eerste bericht terwijl u offline was",
        "Tweede bericht terwijl u offline was",
        BACK,
    ]
    assert bodies.count(BACK) == 1
    assert bodies.count(ANSWER) == 1 and bodies.count(QUESTION) == 1
    assert await citizen.evaluate("() => window.notReloaded === true")
    assert citizen_violations == [] and staff_violations == []
    await citizen_context.close()
    await staff_context.close()
