"""The supervisor's insights page in the console, on the demo data."""

from __future__ import annotations

import html
import re

import httpx
import pyotp

from hub.db import Database
from hub.demo import DEMO_PASSWORD, demo_totp_secret, load_demo
from journeys.catalog import load_catalog
from tests.web.test_pages import csrf_of


async def log_in(client: httpx.AsyncClient, email: str) -> None:
    page = await client.get("/console/login")
    answer = await client.post(
        "/console/login",
        data={
            "csrf_token": csrf_of(page.text),
            "email": email,
            "password": DEMO_PASSWORD,
            "code": pyotp.TOTP(demo_totp_secret(email)).now(),
        },
    )
    assert answer.status_code == 303


async def test_a_supervisor_sees_the_demo_journeys_drawn_and_counted(
    client: httpx.AsyncClient, database: Database
) -> None:
    await load_demo(database, load_catalog())
    assert (await client.get("/console/insights")).status_code == 303  # log in first
    await log_in(client, "fatima@utrecht.demo")

    client.cookies.set("hub_lang", "en")
    page = await client.get("/console/insights")

    assert page.status_code == 200
    text = html.unescape(page.text)
    assert "Insights of Gemeente Utrecht" in text
    # The catalogue on the two axes: one labelled circle per journey of the municipality.
    assert text.count('stroke="#154273" stroke-width="2"') == 4
    for title in ("Permit for a dormer window", "Help with debts", "Question"):
        assert re.search(rf"<title>{re.escape(title)}: \d+ cases</title>", text)
    assert re.search(r'<svg role="img" aria-labelledby="stages-title stages-desc"', text)
    # Every chart's numbers are a table too, and the CSV link keeps the period.
    assert '<caption id="stages-table">' in text
    link = re.search(r'href="(/api/insights\.csv\?[^"]+)"', text)
    assert link is not None
    table = await client.get(html.unescape(link.group(1)))
    assert table.status_code == 200
    assert "journey,dakkapel,,cases_opened," in table.text


async def test_a_wrong_period_is_explained_and_the_default_shown(
    client: httpx.AsyncClient, database: Database
) -> None:
    await load_demo(database, load_catalog())
    await log_in(client, "sanne@toeslagen.demo")

    page = await client.get("/console/insights", params={"from": "2026-05-01", "to": "2026-04-01"})

    assert page.status_code == 422
    assert "De periode klopt niet" in html.unescape(page.text)
