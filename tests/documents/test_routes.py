"""Documents on SQLite and PostgreSQL: real PDFs and PNGs accepted by their content, a renamed
program refused, over-size uploads stopped while they stream in, checksums kept and checked
on download, who may add and fetch them, and information provided by an upload."""

from __future__ import annotations

import base64
import hashlib
import io
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
from fpdf import FPDF
from PIL import Image
from sqlmodel import col, select

from hub.config import Settings
from hub.db import Database
from hub.events.service import Actor
from hub.messages.service import post_message
from hub.models import AccessLogEntry, Case, CaseEvent, Document
from tests.builders import bearer, key_for
from tests.documents.conftest import MAX_UPLOAD_BYTES
from tests.messages.world import World


def a_pdf(text: str = "Loonstrook mei 2026") -> bytes:
    pdf = FPDF()
    pdf.add_page()
    pdf.set_font("helvetica", size=12)
    pdf.cell(text=text)
    return bytes(pdf.output())


def a_png() -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (8, 8), "white").save(buffer, "PNG")
    return buffer.getvalue()


def upload_url(case: Case) -> str:
    return f"/api/cases/{case.id}/documents"


async def upload(
    client: httpx.AsyncClient,
    case: Case,
    token: str,
    content: bytes,
    filename: str = "bewijs.pdf",
    claimed_type: str = "application/pdf",
    **fields: str,
) -> httpx.Response:
    return await client.post(
        upload_url(case),
        files={"file": (filename, content, claimed_type)},
        data=fields,
        headers=bearer(token),
    )


def stored_files(settings: Settings) -> list[Path]:
    store = settings.document_store
    return [p for p in store.rglob("*") if p.is_file()] if store.exists() else []


async def document_rows(database: Database) -> list[Document]:
    async with database.session() as session:
        return list((await session.exec(select(Document))).all())


async def test_a_citizen_uploads_a_pdf_stored_outside_the_database_with_its_checksum(
    client: httpx.AsyncClient, database: Database, settings: Settings, world: World
) -> None:
    content = a_pdf()
    response = await upload(client, world.question, world.anna_token, content, "loonstrook.pdf")
    assert response.status_code == 201, response.text
    added = response.json()
    digest = hashlib.sha256(content).hexdigest()
    assert added["content_type"] == "application/pdf" and added["filename"] == "loonstrook.pdf"
    assert added["sha256"] == digest and added["size"] == len(content)
    assert added["source"] == "upload" and added["uploaded_by_kind"] == "citizen"
    assert added["information_provided"] is False
    assert stored_files(settings) == [settings.document_store / digest[:2] / digest]

    events = await client.get(
        f"/api/cases/{world.question.id}/events", headers=bearer(world.anna_token)
    )
    added_event = events.json()["events"][-1]
    assert added_event["kind"] == "document_added"
    assert added_event["payload"]["document_id"] == added["id"]

    listed = await client.get(upload_url(world.question), headers=bearer(world.anna_token))
    assert [d["id"] for d in listed.json()] == [added["id"]]

    download = await client.get(f"/api/documents/{added['id']}", headers=bearer(world.anna_token))
    assert download.status_code == 200
    assert download.content == content
    assert download.headers["content-type"] == "application/pdf"
    assert download.headers["x-content-type-options"] == "nosniff"
    assert download.headers["content-disposition"].startswith("attachment;")
    assert 'filename="loonstrook.pdf"' in download.headers["content-disposition"]
    assert hashlib.sha256(download.content).hexdigest() == digest


async def test_a_png_is_known_by_its_content_not_its_name_or_claimed_type(
    client: httpx.AsyncClient, world: World
) -> None:
    response = await upload(
        client, world.question, world.anna_token, a_png(), "scan.pdf", "application/pdf"
    )
    assert response.status_code == 201, response.text
    assert response.json()["content_type"] == "image/png"
    assert response.json()["filename"] == "scan.png"
    download = await client.get(
        f"/api/documents/{response.json()['id']}", headers=bearer(world.anna_token)
    )
    assert download.headers["content-type"] == "image/png"


async def test_a_renamed_program_is_refused_by_its_content_and_nothing_is_stored(
    client: httpx.AsyncClient, database: Database, settings: Settings, world: World
) -> None:
    program = b"MZ\x90\x00\x03\x00\x00\x00" + b"\x00" * 120 + b"This program cannot be run in DOS"
    response = await upload(client, world.question, world.anna_token, program, "factuur.pdf")
    assert response.status_code == 422
    assert response.headers["content-type"] == "application/problem+json"
    assert "PDF files and photos or scans" in response.json()["detail"]
    assert await document_rows(database) == []
    assert stored_files(settings) == []


async def test_an_over_size_file_is_refused_with_a_clear_problem_and_nothing_stored(
    client: httpx.AsyncClient, database: Database, settings: Settings, world: World
) -> None:
    just_over = b"%PDF-1.4\n" + b"0" * (MAX_UPLOAD_BYTES - 8)
    assert len(just_over) == MAX_UPLOAD_BYTES + 1
    response = await upload(client, world.question, world.anna_token, just_over)
    assert response.status_code == 413
    assert response.headers["content-type"] == "application/problem+json"
    assert f"{MAX_UPLOAD_BYTES:,} bytes" in response.json()["detail"]
    assert response.json()["max_bytes"] == MAX_UPLOAD_BYTES

    exactly = just_over[:-1]
    accepted = await upload(client, world.question, world.anna_token, exactly)
    assert accepted.status_code == 201, accepted.text
    assert len(await document_rows(database)) == 1
    assert len(stored_files(settings)) == 1


async def test_a_streamed_upload_is_cut_off_at_the_limit_not_read_to_the_end(
    client: httpx.AsyncClient, database: Database, settings: Settings, world: World
) -> None:
    boundary = "grens"
    chunk = b"0" * 65_536
    total_chunks = 100  # 6.5 MB, sent without a Content-Length
    sent = 0

    async def body() -> AsyncIterator[bytes]:
        nonlocal sent
        yield (
            f'--{boundary}\r\nContent-Disposition: form-data; name="file"; '
            f'filename="groot.pdf"\r\nContent-Type: application/pdf\r\n\r\n%PDF-1.4\n'
        ).encode()
        for _ in range(total_chunks):
            sent += 1
            yield chunk
        yield f"\r\n--{boundary}--\r\n".encode()

    response = await client.post(
        upload_url(world.question),
        content=body(),
        headers={
            **bearer(world.anna_token),
            "Content-Type": f"multipart/form-data; boundary={boundary}",
        },
    )
    assert response.status_code == 413
    assert sent < 5, "the hub kept reading after the limit"
    assert await document_rows(database) == []
    assert stored_files(settings) == []


async def test_a_declared_over_size_body_is_refused_before_it_is_read(
    client: httpx.AsyncClient, world: World
) -> None:
    response = await client.post(
        upload_url(world.question),
        content=b"x",
        headers={
            **bearer(world.anna_token),
            "Content-Type": "multipart/form-data; boundary=b",
            "Content-Length": str(50_000_000),
        },
    )
    assert response.status_code == 413


async def test_the_checksum_is_verified_on_download(
    client: httpx.AsyncClient, settings: Settings, world: World
) -> None:
    content = a_pdf()
    added = (await upload(client, world.question, world.anna_token, content)).json()
    url = f"/api/documents/{added['id']}"
    digest = hashlib.sha256(content).digest()
    good = await client.get(url, headers=bearer(world.sanne_token))
    assert good.headers["repr-digest"] == f"sha-256=:{base64.b64encode(digest).decode()}:"

    stored = settings.document_store / added["sha256"][:2] / added["sha256"]
    stored.write_bytes(content[:-20] + b"% Vervalsing\n%%EOF\n")
    damaged = await client.get(url, headers=bearer(world.sanne_token))
    assert damaged.status_code == 500
    assert damaged.headers["content-type"] == "application/problem+json"
    assert "checksum" in damaged.json()["detail"]
    assert b"Vervalsing" not in damaged.content

    stored.unlink()
    missing = await client.get(url, headers=bearer(world.sanne_token))
    assert missing.status_code == 500


async def test_an_upload_provides_the_information_the_case_waits_for(
    client: httpx.AsyncClient, database: Database, world: World
) -> None:
    case_url = f"/api/cases/{world.allowance.id}"
    requested = await client.post(
        f"{case_url}/actions",
        json={"kind": "request_information", "what": "Uw loonstrook van mei"},
        headers=bearer(world.sanne_token),
    )
    assert requested.status_code == 200, requested.text
    assert requested.json()["status_view"]["turn"] == "citizen"

    plain = await upload(client, world.allowance, world.anna_token, a_pdf())
    assert plain.json()["information_provided"] is False
    still = await client.get(case_url, headers=bearer(world.anna_token))
    assert still.json()["status"] == "waiting_for_citizen"

    answer = await upload(
        client, world.allowance, world.anna_token, a_png(), provides_information="true"
    )
    assert answer.status_code == 201, answer.text
    assert answer.json()["information_provided"] is True
    case = (await client.get(case_url, headers=bearer(world.anna_token))).json()
    assert case["status"] == "open"
    assert case["status_view"]["turn"] != "citizen"
    async with database.session() as session:
        kinds = (
            await session.exec(
                select(CaseEvent.kind)
                .where(CaseEvent.case_id == world.allowance.id)
                .order_by(col(CaseEvent.seq))
            )
        ).all()
    assert kinds[-3:] == ["document_added", "document_added", "information_provided"]

    again = await upload(
        client, world.allowance, world.anna_token, a_pdf("nog een"), provides_information="true"
    )
    assert again.status_code == 201 and again.json()["information_provided"] is False


async def test_staff_scan_a_document_at_the_desk(
    client: httpx.AsyncClient, database: Database, world: World
) -> None:
    response = await upload(client, world.question, world.sanne_token, a_pdf(), "paspoort-scan")
    assert response.status_code == 201, response.text
    assert response.json()["source"] == "desk_scan"
    assert response.json()["uploaded_by_kind"] == "staff"
    assert response.json()["filename"] == "paspoort-scan.pdf"
    refused = await upload(client, world.question, world.sanne_token, a_pdf(), source="upload")
    assert refused.status_code == 422
    citizen = await upload(client, world.question, world.anna_token, a_pdf(), source="desk_scan")
    assert citizen.status_code == 422
    async with database.session() as session:
        rows = (await session.exec(select(AccessLogEntry))).all()
    assert [(r.actor_kind, r.action, r.data) for r in rows] == [("staff", "change", "document")]


async def test_a_representative_uploads_for_the_party(
    client: httpx.AsyncClient, world: World
) -> None:
    response = await upload(client, world.question, world.rita_token, a_pdf())
    assert response.status_code == 201, response.text
    assert response.json()["uploaded_by_kind"] == "representative"


async def test_only_those_who_may_see_the_case_add_list_and_fetch_its_documents(
    client: httpx.AsyncClient, database: Database, world: World
) -> None:
    added = (await upload(client, world.question, world.anna_token, a_pdf())).json()
    for token in (world.bram_token, world.lotte_token):
        assert (await upload(client, world.question, token, a_pdf())).status_code == 404
        listed = await client.get(upload_url(world.question), headers=bearer(token))
        assert listed.status_code == 404
        fetched = await client.get(f"/api/documents/{added['id']}", headers=bearer(token))
        missing = await client.get(f"/api/documents/{uuid.uuid4()}", headers=bearer(token))
        assert fetched.status_code == missing.status_code == 404
        assert fetched.json()["detail"] == missing.json()["detail"] == "No such document."
    key = await key_for(database, "toeslagen")
    assert (await upload(client, world.question, key, a_pdf())).status_code == 403
    assert (await client.get(f"/api/documents/{added['id']}")).status_code == 401
    assert len(await document_rows(database)) == 1


async def test_staff_reads_of_documents_are_access_logged(
    client: httpx.AsyncClient, database: Database, world: World
) -> None:
    added = (await upload(client, world.question, world.anna_token, a_pdf())).json()
    await client.get(f"/api/documents/{added['id']}", headers=bearer(world.anna_token))
    await client.get(upload_url(world.question), headers=bearer(world.sanne_token))
    await client.get(f"/api/documents/{added['id']}", headers=bearer(world.sanne_token))
    async with database.session() as session:
        rows = (
            await session.exec(select(AccessLogEntry).order_by(col(AccessLogEntry.created_at)))
        ).all()
    assert [(r.actor_kind, r.action, r.data, r.case_id) for r in rows] == [
        ("staff", "read", "documents", world.question.id),
        ("staff", "read", "document", world.question.id),
    ]
    assert all(r.processing_activity_id is not None for r in rows)


async def test_a_document_on_an_internal_note_stays_with_staff(
    client: httpx.AsyncClient, database: Database, world: World
) -> None:
    async with database.session() as session:
        case = await session.get(Case, world.question.id)
        assert case is not None
        note = await post_message(
            session,
            case=case,
            channel="portal",
            direction="internal",
            author=Actor(kind="staff", id=str(world.sanne.id), name="Sanne de Wit"),
            body="Kopie van het dossier",
        )
    added = await upload(
        client, world.question, world.sanne_token, a_pdf(), message_id=str(note.id)
    )
    assert added.status_code == 201, added.text
    url = f"/api/documents/{added.json()['id']}"
    assert (await client.get(url, headers=bearer(world.sanne_token))).status_code == 200
    assert (await client.get(url, headers=bearer(world.anna_token))).status_code == 404
    listed = await client.get(upload_url(world.question), headers=bearer(world.anna_token))
    assert listed.json() == []
    hidden = await upload(
        client, world.question, world.anna_token, a_pdf(), message_id=str(note.id)
    )
    assert hidden.status_code == 404


async def test_bad_upload_forms_are_refused_clearly(
    client: httpx.AsyncClient, world: World
) -> None:
    no_file = await client.post(
        upload_url(world.question), data={"source": "upload"}, headers=bearer(world.anna_token)
    )
    assert no_file.status_code == 422 and "'file'" in no_file.json()["detail"]
    unknown = await upload(client, world.question, world.anna_token, a_pdf(), colour="red")
    assert unknown.status_code == 422 and unknown.json()["errors"][0]["loc"] == ["colour"]
    empty = await upload(client, world.question, world.anna_token, b"")
    assert empty.status_code == 422 and "empty" in empty.json()["detail"]
    not_a_flag = await upload(
        client, world.question, world.anna_token, a_pdf(), provides_information="maybe"
    )
    assert not_a_flag.status_code == 422


async def test_the_download_name_cannot_break_the_header(
    client: httpx.AsyncClient, world: World
) -> None:
    added = await upload(
        client, world.question, world.anna_token, a_pdf(), 'Rekening "ë"\r\nX-Evil: 1.pdf'
    )
    assert added.status_code == 201, added.text
    download = await client.get(
        f"/api/documents/{added.json()['id']}", headers=bearer(world.anna_token)
    )
    disposition = download.headers["content-disposition"]
    assert "x-evil" not in download.headers
    assert "\r" not in disposition and "\n" not in disposition
    assert "filename*=UTF-8''" in disposition and "%C3%AB" in disposition
