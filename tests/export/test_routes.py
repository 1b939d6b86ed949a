"""GET /api/me/export: the citizen's own archive, all of theirs and nothing of anyone else's."""

from __future__ import annotations

import io
import json
import zipfile
from typing import Any

import httpx
from sqlalchemy import update
from sqlmodel import col, select

from hub.auth.dependencies import SESSION_COOKIE
from hub.config import Settings
from hub.db import Database
from hub.documents.service import store_document
from hub.models import AccessLogEntry, Document
from hub.web.i18n import LANGUAGE_COOKIE
from tests.builders import bearer, key_for
from tests.export.world import PNG, World


async def download(client: httpx.AsyncClient, token: str) -> zipfile.ZipFile:
    response = await client.get("/api/me/export", headers=bearer(token))
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "application/zip"
    assert response.headers["content-disposition"].startswith(
        'attachment; filename="interaction-hub-my-data-'
    )
    assert int(response.headers["content-length"]) == len(response.content)
    return zipfile.ZipFile(io.BytesIO(response.content))


def contents(archive: zipfile.ZipFile) -> dict[str, bytes]:
    assert archive.testzip() is None
    return {name: archive.read(name) for name in archive.namelist()}


def read_json(files: dict[str, bytes], name: str) -> Any:
    return json.loads(files[name])


async def test_the_archive_holds_all_of_the_owners_data(
    client: httpx.AsyncClient, world: World
) -> None:
    files = contents(await download(client, world.owner.token))
    reference = world.owner.case_reference
    folder = f"cases/{reference}"
    assert {
        "README.html",
        "manifest.json",
        "you/details.json",
        "you/mandates.json",
        f"{folder}/timeline.json",
        f"{folder}/case.json",
        f"{folder}/case.html",
        f"{folder}/messages.json",
        "notices.json",
        "consents.json",
        "access-log.json",
    } <= set(files)
    everything = b"\n".join(files.values()).decode(errors="replace")
    for name, secret in world.owner.secrets.items():
        assert secret in everything, name

    details = read_json(files, "you/details.json")
    assert details["name"] == world.owner.secrets["name"]
    assert [a["value"] for a in details["addresses"]] == ["anna@example.nl"]
    assert details["preference_changes"][0]["preference"] == "language"
    assert details["logins"], "the session the test logged in with"
    mandates = read_json(files, "you/mandates.json")
    assert [m["representative"]["name"] for m in mandates["given"]] == ["Rita Vertegenwoordiger"]
    assert mandates["held"] == []

    case = read_json(files, f"{folder}/case.json")
    assert case["reference"] == reference
    timeline = read_json(files, f"{folder}/timeline.json")
    assert [e["kind"] for e in timeline].count("message") == 2
    messages = read_json(files, f"{folder}/messages.json")
    assert [m["direction"] for m in messages] == ["inbound", "outbound"]
    [document] = case["documents"]
    assert files[document["in_archive"]] == PNG + b"anna"
    assert [n["subject"] for n in read_json(files, "notices.json")] == ["Bericht voor anna"]
    assert [c["granted"] for c in read_json(files, "consents.json")] == [True, False]
    log = read_json(files, "access-log.json")
    assert [(e["who"], e["action"]) for e in log] == [("Sanne de Wit", "read")]
    manifest = read_json(files, "manifest.json")
    assert {f["path"] for f in manifest["files"]} | {"manifest.json"} == set(files)
    assert manifest["made_for"]["id"] == str(world.owner.party_id)
    assert manifest["counts"]["messages"] == 2


async def test_nothing_of_another_party_and_no_internal_note(
    client: httpx.AsyncClient, world: World
) -> None:
    for person, others in (
        (world.owner, (world.other,)),
        (world.other, (world.owner, world.representative)),
    ):
        files = contents(await download(client, person.token))
        everything = b"\n".join(files.values()).decode(errors="replace")
        for other in others:
            leaked = [name for name, secret in other.secrets.items() if secret in everything]
            assert leaked == [], (person.secrets["name"], leaked)
        assert world.internal_note not in everything
        assert world.internal_file not in everything
        assert not [name for name in files if world.internal_file in name]


async def test_a_representative_gets_their_own_archive_not_the_represented(
    client: httpx.AsyncClient, world: World
) -> None:
    """Default refusal: the mandate lets Rita act on Anna's cases, not take Anna's archive.
    Hers names whom she may act for (her own mandate), and nothing of Anna's cases."""
    files = contents(await download(client, world.representative.token))
    everything = b"\n".join(files.values()).decode(errors="replace")
    held = read_json(files, "you/mandates.json")["held"]
    assert [m["represented"]["id"] for m in held] == [str(world.owner.party_id)]
    shown = {name for name, s in world.owner.secrets.items() if s in everything}
    assert shown == {"name"}
    assert not [name for name in files if name.startswith("cases/")]
    # Naming the represented party changes nothing: there is no such choice.
    asked = await client.get(
        "/api/me/export",
        params={"party": str(world.owner.party_id)},
        headers=bearer(world.representative.token),
    )
    assert world.owner.case_reference.encode() not in zipfile.ZipFile(
        io.BytesIO(asked.content)
    ).read("manifest.json")


async def test_only_a_citizen_downloads(
    client: httpx.AsyncClient, world: World, database: Database
) -> None:
    anonymous = await client.get("/api/me/export")
    assert anonymous.status_code == 401
    assert anonymous.headers["content-type"] == "application/problem+json"
    staff = await client.get("/api/me/export", headers=bearer(world.staff_token))
    assert staff.status_code == 403
    agency = await client.get(
        "/api/me/export", headers={"X-API-Key": await key_for(database, "toeslagen")}
    )
    assert agency.status_code == 403
    for refused in (anonymous, staff, agency):
        assert world.owner.secrets["name"] not in refused.text


async def test_every_download_is_in_the_access_log(
    client: httpx.AsyncClient, world: World, database: Database
) -> None:
    await download(client, world.owner.token)
    # Each archive's log holds the downloads before it: its own line is written once it
    # is made (the chain's lock is not held while it is built).
    second = contents(await download(client, world.owner.token))
    assert [e["action"] for e in read_json(second, "access-log.json")] == ["read", "export"]
    async with database.session() as session:
        entries = (
            await session.exec(
                select(AccessLogEntry).where(
                    AccessLogEntry.party_id == world.owner.party_id,
                    AccessLogEntry.action == "export",
                )
            )
        ).all()
    assert [(e.actor_kind, e.actor_id, e.data) for e in entries] == [
        ("citizen", str(world.owner.party_id), "everything")
    ] * 2
    assert all(e.request_id for e in entries)
    log = await client.get("/api/me/access-log", headers=bearer(world.owner.token))
    assert [e["action"] for e in log.json()].count("export") == 2


async def test_the_readable_pages_escape_what_people_typed(
    client: httpx.AsyncClient, world: World
) -> None:
    files = contents(await download(client, world.owner.token))
    for page in ("README.html", f"cases/{world.owner.case_reference}/case.html"):
        html = files[page].decode()
        assert "<script>" not in html, page
    readme = files["README.html"].decode()
    assert "Anna &lt;script&gt;alert(1)&lt;/script&gt; de Vries" in readme
    assert "Uw gegevens bij de Interaction Hub" in readme  # in the citizen's language


async def test_a_damaged_document_is_named_not_fatal(
    client: httpx.AsyncClient, world: World, database: Database, settings: Settings
) -> None:
    async with database.session() as session:
        document = (
            await session.exec(select(Document).where(Document.filename == "loonstrook-anna.png"))
        ).one()
    (settings.document_store / document.storage_key).write_bytes(b"changed behind our back")
    files = contents(await download(client, world.owner.token))
    case = read_json(files, f"cases/{world.owner.case_reference}/case.json")
    assert [d["in_archive"] for d in case["documents"]] == [None]
    assert "loonstrook-anna" in files["README.html"].decode()


async def test_the_my_data_page_offers_the_download_and_lists_it(
    client: httpx.AsyncClient, world: World
) -> None:
    """In the browser: the link on "What we know about you" downloads with the login cookie,
    and the page's access log then shows the download."""
    client.cookies.set(SESSION_COOKIE, world.other.token)
    client.cookies.set(LANGUAGE_COOKIE, "nl")
    page = await client.get("/my-data")
    assert 'href="/api/me/export"' in page.text
    assert "Download al uw gegevens" in page.text
    assert "Heeft al uw gegevens gedownload" not in page.text
    downloaded = await client.get("/api/me/export")
    assert downloaded.status_code == 200
    assert zipfile.ZipFile(io.BytesIO(downloaded.content)).testzip() is None
    assert "Heeft al uw gegevens gedownload" in (await client.get("/my-data")).text


async def test_access_log_entries_kept_by_pseudonym_only_are_in_it(
    client: httpx.AsyncClient, world: World, database: Database
) -> None:
    """Retention drops an entry's party id and keeps its pseudonym (the hash chain covers
    that): the hub still holds the line about the citizen, so the archive has it."""
    async with database.session() as session:
        await session.exec(
            update(AccessLogEntry)
            .where(col(AccessLogEntry.party_id) == world.owner.party_id)
            .values(party_id=None)
        )
    files = contents(await download(client, world.owner.token))
    log = read_json(files, "access-log.json")
    assert [(e["who"], e["action"]) for e in log] == [("Sanne de Wit", "read")]
    other = contents(await download(client, world.other.token))
    assert world.owner.secrets["name"] not in other["access-log.json"].decode()


async def test_letters_outside_a_case_are_in_it(
    client: httpx.AsyncClient, world: World, database: Database, settings: Settings
) -> None:
    """A notice sent by post is a letter on no case: it is the addressee's, and only theirs."""
    async with database.session() as session:
        await store_document(
            session,
            store=settings.document_store,
            content=b"%PDF-1.7 brief over huurtoeslag",
            filename="brief-huurtoeslag.pdf",
            source="letter",
            uploaded_by_kind="system",
            max_bytes=1_000_000,
            party_id=world.owner.party_id,
            content_type="application/pdf",
        )
    files = contents(await download(client, world.owner.token))
    [letter] = [name for name in files if name.startswith("letters/")]
    assert letter.endswith("-brief-huurtoeslag.pdf")
    assert files[letter] == b"%PDF-1.7 brief over huurtoeslag"
    other = contents(await download(client, world.other.token))
    assert not [name for name in other if name.startswith("letters/")]
