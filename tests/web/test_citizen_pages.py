"""The preferences and representation pages over HTTP: a channel refused where the citizen
cannot be reached, choices kept with their history and the page language following the
preference; a mandate given by BSN and name, a representative acting for the citizen with
"you are acting for" on every page, and a revoked mandate closing the case at once."""

from __future__ import annotations

import re

import httpx
from sqlmodel import select

from hub.config import Settings
from hub.db import Database
from hub.models import AccessLogEntry, LoginSession, Mandate, Party
from hub.web.i18n import LANGUAGE_COOKIE
from tests.builders import bearer, token_for
from tests.web.test_pages import csrf_of, log_in_citizen
from tests.web.world import make_portal_world


async def test_preferences_refuse_an_unreachable_channel_and_keep_every_change(
    client: httpx.AsyncClient, database: Database, settings: Settings
) -> None:
    world = await make_portal_world(database)
    await log_in_citizen(client, database, settings, world.citizen_email)
    page = await client.get("/preferences")
    assert page.status_code == 200
    assert 'id="channel-portal" name="channel" value="portal"' in page.text
    assert "Naar: jan@example.nl" in page.text
    assert "Wij hebben geen gecontroleerd mobiel nummer van u." in page.text
    assert "U hebt nog niets veranderd." in page.text

    refused = await client.post(
        "/preferences", data={"csrf_token": csrf_of(page.text), "channel": "sms", "language": "nl"}
    )
    assert refused.status_code == 422
    assert "U kunt alleen sms kiezen als wij een gecontroleerd mobiel nummer" in refused.text
    assert (
        'id="channel-sms" name="channel" value="sms" aria-describedby="channel-sms-hint" checked'
        in (refused.text)
    )

    saved = await client.post(
        "/preferences",
        data={
            "csrf_token": csrf_of(page.text),
            "channel": "email",
            "language": "en",
            "need-plain_language": "yes",
        },
    )
    assert saved.status_code == 303 and saved.headers["location"] == "/preferences?saved=1"
    assert client.cookies.get(LANGUAGE_COOKIE) == "en"  # the pages now speak English
    shown = await client.get(saved.headers["location"])
    assert "Your choices are saved." in shown.text
    history = shown.text[shown.text.index('id="history-heading"') :]
    assert "from On this website to By email" in history
    assert "from Nederlands to English" in history
    assert "from None to Plain language" in history
    assert history.count("You,") == 3 and "on this website" in history
    async with database.session() as session:
        jan = await session.get(Party, world.citizen_id)
    assert jan is not None
    assert (jan.preferred_channel, jan.preferred_language, jan.needs) == (
        "email",
        "en",
        ["plain_language"],
    )

    # Staff of an agency with a case of his read the history: his access log says so.
    staff = bearer(await token_for(database, "staff", world.staff_id))
    read = await client.get(f"/api/parties/{jan.id}/preferences/history", headers=staff)
    assert read.status_code == 200 and len(read.json()) == 3
    client.cookies.set(LANGUAGE_COOKIE, "nl")
    assert "uw voorkeuren" in (await client.get("/my-data")).text


async def test_a_representative_acts_for_the_citizen_until_the_mandate_is_revoked(
    client: httpx.AsyncClient, database: Database, settings: Settings
) -> None:
    world = await make_portal_world(database)
    async with database.session() as session:
        petra = (await session.exec(select(Party).where(Party.name == "Petra de Vries"))).one()
    await log_in_citizen(client, database, settings, world.citizen_email)
    page = await client.get("/representation")
    assert "U hebt nog niemand gemachtigd." in page.text
    form = {"csrf_token": csrf_of(page.text), "bsn": petra.bsn or "", "scope": "all"}

    wrong = await client.post("/representation/mandates", data={**form, "name": "Petra Jansen"})
    unknown = await client.post(  # a BSN that passes the eleven-test but is nobody's here
        "/representation/mandates", data={**form, "bsn": "111222333", "name": "Petra de Vries"}
    )
    mistyped = await client.post(
        "/representation/mandates", data={**form, "bsn": "123456789", "name": "Petra de Vries"}
    )
    assert wrong.status_code == unknown.status_code == 422
    assert "Wij vinden geen persoon met dit BSN en deze naam." in wrong.text
    assert "Wij vinden geen persoon met dit BSN en deze naam." in unknown.text
    assert 'value="Petra Jansen"' in wrong.text  # what was typed comes back
    assert mistyped.status_code == 422 and "Dit BSN klopt niet." in mistyped.text

    given = await client.post("/representation/mandates", data={**form, "name": "petra de vries"})
    assert given.status_code == 303, given.text
    listed = await client.get(given.headers["location"])
    assert "De machtiging is bewaard." in listed.text
    assert "Petra de Vries" in listed.text and "Al uw zaken" in listed.text

    transport = client._transport
    async with httpx.AsyncClient(transport=transport, base_url="http://hub.test") as representative:
        await log_in_citizen(representative, database, settings, "petra@example.nl")
        mine = await representative.get("/representation")
        assert "Handel namens Jan Jansen" in mine.text
        acting = await representative.post(
            "/representation/act",
            data={"csrf_token": csrf_of(mine.text), "party_id": str(world.citizen_id)},
        )
        assert acting.status_code == 303
        assert acting.headers["location"] == "/representation/cases"
        cases = await representative.get("/representation/cases")
        assert cases.text.count('<li class="card') == 3  # Jan's cases
        for path in ("/my-cases", "/notices", "/preferences", f"/cases/{world.waiting_case_id}"):
            shown = await representative.get(path)
            assert shown.status_code == 200, path
            assert "U handelt namens Jan Jansen." in shown.text, path
        assert (
            "Dit zijn uw eigen voorkeuren, niet die van Jan Jansen."
            in (await representative.get("/preferences")).text
        )

        async with database.session() as session:
            log = (
                await session.exec(
                    select(AccessLogEntry).where(AccessLogEntry.party_id == world.citizen_id)
                )
            ).all()
            mandate = (await session.exec(select(Mandate))).one()
        assert {entry.actor_kind for entry in log} == {"representative"}
        assert {entry.actor_name for entry in log} == {"Petra de Vries"}

        revoke_page = await client.get("/representation")
        revoked = await client.post(
            "/representation/revoke",
            data={"csrf_token": csrf_of(revoke_page.text), "mandate_id": str(mandate.id)},
        )
        assert revoked.status_code == 303
        assert (
            "De machtiging is ingetrokken." in (await client.get(revoked.headers["location"])).text
        )

        gone = await representative.get(f"/cases/{world.waiting_case_id}")
        assert gone.status_code == 404
        assert "U handelt namens" not in gone.text
        after = await representative.get("/representation/cases")
        assert "U handelt nu niet namens iemand anders." in after.text

        stopped = await representative.post(
            "/representation/stop", data={"csrf_token": csrf_of(after.text)}
        )
        assert stopped.status_code == 303 and "hub_acting_for" not in representative.cookies


async def test_acting_for_someone_without_a_mandate_is_not_found(
    client: httpx.AsyncClient, database: Database, settings: Settings
) -> None:
    world = await make_portal_world(database)
    await log_in_citizen(client, database, settings, "petra@example.nl")
    page = await client.get("/representation")
    refused = await client.post(
        "/representation/act",
        data={"csrf_token": csrf_of(page.text), "party_id": str(world.citizen_id)},
    )
    assert refused.status_code == 404
    # A cookie made up by hand grants nothing either.
    async with database.session() as session:
        login = (await session.exec(select(LoginSession))).all()[-1]
    client.cookies.set("hub_acting_for", f"{world.citizen_id}.{login.id}")
    assert "U handelt namens" not in (await client.get("/my-cases")).text
    assert (await client.get(f"/cases/{world.waiting_case_id}")).status_code == 404
    assert re.search(
        r"<h1>Zaken van iemand die u vertegenwoordigt</h1>",
        (await client.get("/representation/cases")).text,
    )
