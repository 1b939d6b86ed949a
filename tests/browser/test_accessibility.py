"""Every page the router serves — the list is read from the app, so a new page is checked
without anyone adding it here — in Dutch and English: axe-core finds no serious or critical
violation, and at 320 px wide nothing scrolls sideways (WCAG 2.1 AA, reflow)."""

from __future__ import annotations

from typing import Any

import pytest
from playwright.async_api import Browser, Page

from tests.browser.conftest import Hub
from tests.web.routes import audience, concrete_path, html_pages

SERIOUS = ("serious", "critical")


async def axe_violations(page: Page, axe_source: str) -> list[dict[str, Any]]:
    # Evaluated through the browser's debugging protocol, which the page's CSP (no inline
    # script) does not govern, so the pages are checked with their real policy in force.
    if not await page.evaluate("() => typeof window.axe !== 'undefined'"):
        await page.evaluate(axe_source)
    result: dict[str, Any] = await page.evaluate(
        "async () => await window.axe.run(document, {resultTypes: ['violations']})"
    )
    return [
        {"id": v["id"], "impact": v["impact"], "nodes": [n["target"] for n in v["nodes"]][:5]}
        for v in result["violations"]
        if v["impact"] in SERIOUS
    ]


async def check(page: Page, axe_source: str, label: str) -> dict[str, Any]:
    """What is wrong with the page as shown: axe-core's findings, then sideways scrolling
    at 320 px."""
    problems: dict[str, Any] = {}
    if violations := await axe_violations(page, axe_source):
        problems[label] = violations
    await page.set_viewport_size({"width": 320, "height": 640})
    if (overflow := await sideways_scroll(page)) > 0:
        problems[f"{label} at 320 px"] = f"{overflow} px sideways scroll"
    return problems


async def sideways_scroll(page: Page) -> int:
    """How many pixels the page is wider than the window."""
    width: int = await page.evaluate(
        "() => document.documentElement.scrollWidth - document.documentElement.clientWidth"
    )
    return width


# The pages' HTML does not depend on the database, so this (slowest) check runs on one.
@pytest.mark.parametrize("database", ["sqlite"], indirect=True)
async def test_every_page_is_accessible_in_both_languages_and_at_320_px(
    hub: Hub, browser: Browser, axe_source: str
) -> None:
    world = hub.world
    urls = [
        (audience(served.route), concrete_path(served, world.path_values))
        for served in html_pages(hub.app)
    ]
    # The same pages in other states: a thread with messages, a document just sent, and the
    # error page a case of someone else gives.
    urls += [
        ("citizen", f"/cases/{world.mail_case_id}"),
        ("citizen", f"/cases/{world.waiting_case_id}?sent=1"),
        ("citizen", f"/cases/{world.other_case_id}"),
        ("staff", f"/console/cases/{world.mail_case_id}"),
    ]
    assert len(urls) >= 8

    # A member of staff reads the queue first, so the citizen's access log has lines to show.
    reader = await hub.context(browser, as_="staff")
    await (await reader.new_page()).goto("/console")
    await reader.close()

    problems: dict[str, Any] = {}
    for lang in ("nl", "en"):
        contexts = {
            who: await hub.context(browser, as_=who, lang=lang)
            for who in ("anyone", "citizen", "staff")
        }
        for who, path in urls:
            page = await contexts[who].new_page()
            response = await page.goto(path)
            assert response is not None
            assert response.headers["content-type"].startswith("text/html"), path
            assert await page.get_attribute("html", "lang") == lang
            problems.update(await check(page, axe_source, f"{lang} {path}"))
            await page.close()
        # After the main interactions: a form sent back with its error, a login code refused.
        page = await contexts["citizen"].new_page()
        await page.goto(f"/cases/{world.waiting_case_id}")
        await page.locator("#file").set_input_files(
            files=[{"name": "notes.txt", "mimeType": "text/plain", "buffer": b"not a scan"}]
        )
        await page.locator(".call-to-action button[type=submit]").click()
        await page.wait_for_selector(".error-summary")
        problems.update(await check(page, axe_source, f"{lang} upload refused"))
        page = await contexts["anyone"].new_page()
        await page.goto("/login")
        await page.fill("#address", world.citizen_email)
        await page.click("main button[type=submit]")
        await page.fill("#code", "000000")
        await page.click("main button[type=submit]")
        await page.wait_for_selector(".error-summary")
        problems.update(await check(page, axe_source, f"{lang} code refused"))
        # The console: the desk's answer to a search, and a reply sent back with its error.
        page = await contexts["staff"].new_page()
        await page.goto("/console")
        case_link = page.locator(f'a[href="/console/cases/{world.mail_case_id}"]').first
        reference = await case_link.inner_text()
        await page.goto("/console/desk")
        await page.fill("#desk-reference", reference)
        await page.select_option("#desk-purpose", "vragen-beantwoorden")
        await page.click("main button[type=submit]")
        await page.wait_for_selector("#cases-heading")
        problems.update(await check(page, axe_source, f"{lang} desk search"))
        await page.goto(f"/console/cases/{world.mail_case_id}")
        await page.click("button[name=do][value=send]")
        await page.wait_for_selector(".error-summary")
        problems.update(await check(page, axe_source, f"{lang} reply refused"))
        for context in contexts.values():
            await context.close()
    assert problems == {}
