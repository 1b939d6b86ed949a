"""The print queue API for a print-and-post provider or mail room, and the counter's printed
status summary."""

from __future__ import annotations

import base64
import hashlib
import uuid

import httpx
import pytest
from sqlmodel import col, select

from hub.app import build_adapters
from hub.config import Settings
from hub.db import Database
from hub.delivery.worker import deliver_once
from hub.models import AccessLogEntry, CaseEvent, Document, Message, OutboxItem, PrintJob
from tests.builders import bearer, key_for, make_party, token_for
from tests.letters.conftest import LetterCase, staff_member
from tests.letters.reading import pdf_text


@pytest.fixture
async def queued(settings: Settings, database: Database, letter_case: LetterCase) -> LetterCase:
    """The letter case with its letter rendered and waiting in the print queue."""
    await deliver_once(database, build_adapters(settings, database))
    return letter_case


async def only_job(client: httpx.AsyncClient, key: str) -> dict[str, object]:
    response = await client.get("/api/print-jobs?status=queued", headers=bearer(key))
    assert response.status_code == 200
    [job] = response.json()
    assert isinstance(job, dict)
    return job


async def access_log(database: Database, data: str) -> list[AccessLogEntry]:
    async with database.session() as session:
        query = select(AccessLogEntry).where(AccessLogEntry.data == data)
        return list((await session.exec(query)).all())


async def test_the_agency_lists_its_own_queued_letters_only(
    client: httpx.AsyncClient, database: Database, queued: LetterCase
) -> None:
    own, other = await key_for(database, "toeslagen"), await key_for(database, "belastingen")
    job = await only_job(client, own)
    assert job["status"] == "queued"
    assert job["case_reference"] == queued.case.reference
    assert job["recipient"] == "Oudegracht 101\n3511 AB Utrecht"
    assert job["pdf_url"] == f"/api/print-jobs/{job['id']}/pdf"
    other_list = await client.get("/api/print-jobs", headers=bearer(other))
    assert other_list.status_code == 200 and other_list.json() == []
    collected = await client.get("/api/print-jobs?status=collected", headers=bearer(own))
    assert collected.json() == []
    # Reading addresses is an access to the citizen's data, logged for the agency.
    [entry] = await access_log(database, "letter_address")
    assert (entry.party_id, entry.agency_id, entry.case_id) == (
        queued.party.id,
        "toeslagen",
        queued.case_id,
    )
    assert entry.processing_activity_id is not None


async def test_the_agencys_staff_see_the_queue_citizens_do_not(
    client: httpx.AsyncClient, database: Database, queued: LetterCase
) -> None:
    staff_token = await token_for(database, "staff", queued.staff.id)
    response = await client.get("/api/print-jobs", headers=bearer(staff_token))
    assert response.status_code == 200 and len(response.json()) == 1
    citizen_token = await token_for(database, "citizen", queued.party.id)
    refused = await client.get("/api/print-jobs", headers=bearer(citizen_token))
    assert refused.status_code == 403
    assert (await client.get("/api/print-jobs")).status_code == 401


async def test_a_status_filter_that_is_no_status_is_refused(
    client: httpx.AsyncClient, database: Database, queued: LetterCase
) -> None:
    key = await key_for(database, "toeslagen")
    response = await client.get("/api/print-jobs?status=lost", headers=bearer(key))
    assert response.status_code == 422
    assert response.headers["content-type"] == "application/problem+json"


async def test_the_pdf_is_handed_out_as_stored_to_its_agency_only(
    client: httpx.AsyncClient, database: Database, queued: LetterCase
) -> None:
    own, other = await key_for(database, "toeslagen"), await key_for(database, "belastingen")
    job = await only_job(client, own)
    response = await client.get(str(job["pdf_url"]), headers=bearer(own))
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/pdf"
    assert response.headers["cache-control"] == "no-store"
    assert hashlib.sha256(response.content).hexdigest() == job["pdf_sha256"]
    digest = base64.b64encode(hashlib.sha256(response.content).digest()).decode()
    assert response.headers["repr-digest"] == f"sha-256=:{digest}:"
    assert "Zoë Jansen" in pdf_text(response.content)
    assert len(await access_log(database, "letter")) == 1
    # Another agency gets the answer it gets for a job that does not exist.
    for url in (
        str(job["pdf_url"]),
        f"/api/print-jobs/{uuid.uuid4()}/pdf",
    ):
        refused = await client.get(url, headers=bearer(other))
        assert refused.status_code == 404
    for step in ("collected", "posted"):
        refused = await client.post(f"/api/print-jobs/{job['id']}/{step}", headers=bearer(other))
        assert refused.status_code == 404


async def test_a_pdf_that_no_longer_matches_its_checksum_is_not_handed_out(
    client: httpx.AsyncClient, settings: Settings, database: Database, queued: LetterCase
) -> None:
    key = await key_for(database, "toeslagen")
    job = await only_job(client, key)
    async with database.session() as session:
        document = (await session.exec(select(Document))).one()
    (settings.document_store / document.storage_key).write_bytes(b"%PDF-1.4 tampered")
    response = await client.get(str(job["pdf_url"]), headers=bearer(key))
    assert response.status_code == 500
    assert response.headers["content-type"] == "application/problem+json"
    assert "checksum" in response.json()["detail"]


async def test_collected_then_posted_delivers_the_letter_and_tells_the_citizen(
    client: httpx.AsyncClient, settings: Settings, database: Database, queued: LetterCase
) -> None:
    key = await key_for(database, "toeslagen")
    job = await only_job(client, key)
    base = f"/api/print-jobs/{job['id']}"

    collected = await client.post(f"{base}/collected", headers=bearer(key))
    assert collected.status_code == 200
    assert collected.json()["status"] == "collected"
    assert collected.json()["collected_at"] is not None
    again = await client.post(f"{base}/collected", headers=bearer(key))
    assert again.status_code == 200
    assert again.json()["collected_at"] == collected.json()["collected_at"]
    assert (await client.get("/api/print-jobs?status=queued", headers=bearer(key))).json() == []

    posted = await client.post(f"{base}/posted", headers=bearer(key))
    assert posted.status_code == 200
    assert posted.json()["status"] == "posted" and posted.json()["posted_at"] is not None
    assert (await client.post(f"{base}/posted", headers=bearer(key))).status_code == 200

    async with database.session() as session:
        outbox = (await session.exec(select(OutboxItem))).one()
        message = await session.get(Message, queued.message.id)
        events = (
            await session.exec(
                select(CaseEvent)
                .where(CaseEvent.case_id == queued.case_id, CaseEvent.kind == "letter_posted")
                .order_by(col(CaseEvent.seq))
            )
        ).all()
    assert outbox.status == "delivered"
    assert message is not None and message.delivery_status == "delivered"
    [event] = events  # posting twice told the citizen once
    assert event.audience == "citizen"
    assert event.actor_kind == "agency"
    assert event.payload["print_job_id"] == job["id"]
    assert event.payload["message_id"] == str(queued.message.id)
    assert event.payload["text"].startswith("We hebben u op ")
    assert event.payload["text"].endswith(" een brief gestuurd.")

    # States only move forward.
    back = await client.post(f"{base}/collected", headers=bearer(key))
    assert back.status_code == 409
    assert back.headers["content-type"] == "application/problem+json"
    assert back.json()["current_status"] == "posted"

    # The worker, taking the row up again, keeps it delivered.
    await deliver_once(database, build_adapters(settings, database))
    async with database.session() as session:
        assert (await session.exec(select(OutboxItem))).one().status == "delivered"
        assert len((await session.exec(select(PrintJob))).all()) == 1


async def test_staff_can_report_a_letter_posted_straight_from_the_queue(
    client: httpx.AsyncClient, database: Database, queued: LetterCase
) -> None:
    token = await token_for(database, "staff", queued.staff.id)
    job = await only_job(client, token)
    posted = await client.post(f"/api/print-jobs/{job['id']}/posted", headers=bearer(token))
    assert posted.status_code == 200
    body = posted.json()
    assert body["status"] == "posted"
    assert body["collected_at"] is not None and body["posted_at"] is not None


async def test_the_status_summary_for_staff_is_logged(
    client: httpx.AsyncClient, database: Database, letter_case: LetterCase
) -> None:
    token = await token_for(database, "staff", letter_case.staff.id)
    response = await client.get(
        f"/api/cases/{letter_case.case_id}/summary.pdf", headers=bearer(token)
    )
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/pdf"
    assert response.content.startswith(b"%PDF")
    text = pdf_text(response.content)
    assert "Stand van uw zaak: Vraag" in text
    assert "Stap 1 van " in text and "Vraag ontvangen" in text
    assert "Wat er nu gebeurt: Wij hebben uw vraag ontvangen." in text
    assert "Wie is aan zet: wij, Toeslagen." in text
    assert "Uw contactpersoon: Sanne de Wit, Toeslagen." in text
    assert letter_case.case.reference in text
    assert "Zoë Jansen" in text and "Oudegracht 101" in text
    [entry] = await access_log(database, "status_summary")
    assert entry.actor_id == str(letter_case.staff.id)
    assert entry.case_id == letter_case.case_id


async def test_the_citizen_prints_their_own_summary_in_english(
    client: httpx.AsyncClient, database: Database, letter_case: LetterCase
) -> None:
    token = await token_for(database, "citizen", letter_case.party.id)
    response = await client.get(
        f"/api/cases/{letter_case.case_id}/summary.pdf?lang=en", headers=bearer(token)
    )
    assert response.status_code == 200
    text = pdf_text(response.content)
    assert "Status of your case: Question" in text
    assert "Step 1 of " in text and "Your contact: Sanne de Wit, Toeslagen." in text
    assert await access_log(database, "status_summary") == []  # their own data


async def test_nobody_else_gets_the_summary(
    client: httpx.AsyncClient, database: Database, letter_case: LetterCase
) -> None:
    url = f"/api/cases/{letter_case.case_id}/summary.pdf"
    async with database.session() as session:
        stranger = await make_party(session, "Piet Vreemd")
        outsider = await staff_member(session, "belastingen", "Bas Buiten")
    for kind, subject in (("citizen", stranger.id), ("staff", outsider.id)):
        token = await token_for(database, kind, subject)  # type: ignore[arg-type]
        response = await client.get(url, headers=bearer(token))
        assert response.status_code == 404
        assert response.headers["content-type"] == "application/problem+json"
    missing = await client.get(
        f"/api/cases/{uuid.uuid4()}/summary.pdf",
        headers=bearer(await token_for(database, "citizen", stranger.id)),
    )
    assert missing.status_code == 404
    key = await key_for(database, "toeslagen")
    assert (await client.get(url, headers=bearer(key))).status_code == 403
