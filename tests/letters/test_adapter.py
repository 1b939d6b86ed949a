"""A letter reply goes through the outbox and the real adapter into the print queue."""

from __future__ import annotations

import asyncio
import dataclasses
import datetime as dt

from sqlmodel import col, func, select

from channels.letter.adapter import LetterAdapter
from hub.app import build_adapters
from hub.config import Settings
from hub.db import Database, utcnow
from hub.delivery.worker import claim_due, deliver_once
from hub.documents.service import read_file
from hub.models import Document, Message, OutboxItem, PrintJob
from hub.ports import Outbound
from tests.builders import make_agency, make_case, make_party
from tests.letters.conftest import BODY, LetterCase
from tests.letters.reading import pdf_text


async def expire_claims(database: Database) -> None:
    async with database.session() as session:
        for item in (await session.exec(select(OutboxItem))).all():
            item.claimed_until = utcnow() - dt.timedelta(seconds=1)
            item.next_attempt_at = utcnow() - dt.timedelta(seconds=1)
            session.add(item)


async def count(database: Database, model: type[PrintJob] | type[Document]) -> int:
    async with database.session() as session:
        return (await session.exec(select(func.count()).select_from(model))).one()


async def test_the_letter_adapter_is_wired_in_without_any_setting(
    settings: Settings, database: Database
) -> None:
    assert isinstance(build_adapters(settings, database).get("letter"), LetterAdapter)


async def test_a_letter_reply_becomes_a_pdf_in_the_print_queue(
    settings: Settings, database: Database, letter_case: LetterCase
) -> None:
    assert await deliver_once(database, build_adapters(settings, database)) == 1

    async with database.session() as session:
        job = (await session.exec(select(PrintJob))).one()
        document = await session.get(Document, job.document_id)
        outbox = (await session.exec(select(OutboxItem))).one()
        message = await session.get(Message, letter_case.message.id)
    assert document is not None and message is not None
    assert job.status == "queued"
    assert job.agency_id == "toeslagen"
    assert job.case_id == letter_case.case_id
    assert job.recipient == "Oudegracht 101\n3511 AB Utrecht"
    assert job.outbox_id == outbox.id
    # Accepted by the print queue, not yet delivered: that is when it is posted.
    assert (outbox.status, outbox.provider, outbox.provider_id) == (
        "sending",
        "print-queue",
        str(job.id),
    )
    assert message.delivery_status == "sending"
    # The PDF is kept with the case, the citizen and the message, under the document store.
    assert document.content_type == "application/pdf"
    assert document.source == "letter"
    assert (document.case_id, document.party_id, document.message_id) == (
        letter_case.case_id,
        letter_case.party.id,
        letter_case.message.id,
    )
    assert (settings.document_store / document.storage_key).is_file()
    content = read_file(settings.document_store, document)
    assert content.startswith(b"%PDF")
    text = pdf_text(content)
    assert "Zoë Jansen" in text
    assert "Oudegracht 101\n3511 AB Utrecht" in text
    assert letter_case.case.reference in text
    assert BODY in text  # both lines, the break between them kept, ë and € as typed
    assert "Toeslagen" in text
    assert "Sanne de Wit" in text
    assert f"{settings.base_url}/cases/{letter_case.case_id}" in text


async def test_sending_the_same_outbox_row_again_makes_no_second_job(
    settings: Settings, database: Database, letter_case: LetterCase
) -> None:
    adapter = LetterAdapter(settings, database)
    [outbound] = await claim_due(database)
    first = await adapter.send(outbound)
    # A worker that crashed before recording the outcome sends the row again.
    again = await adapter.send(outbound)
    assert first.status == again.status == "sending"
    assert first.provider_id == again.provider_id
    # The worker takes the row up again once the claim of the worker that crashed expires.
    await expire_claims(database)
    assert await deliver_once(database, build_adapters(settings, database)) == 1
    assert await count(database, PrintJob) == 1
    assert await count(database, Document) == 1


async def test_the_worker_leaves_a_queued_letter_to_the_print_queue(
    settings: Settings, database: Database, letter_case: LetterCase
) -> None:
    adapters = build_adapters(settings, database)
    assert await deliver_once(database, adapters) == 1
    # Waiting to be posted, the letter is not sent again and again.
    assert await deliver_once(database, adapters) == 0
    async with database.session() as session:
        outbox = (await session.exec(select(OutboxItem))).one()
    assert outbox.status == "sending"
    assert outbox.next_attempt_at > utcnow() + dt.timedelta(hours=23)


async def test_two_workers_sending_the_same_row_at_once_make_one_job(
    settings: Settings, database: Database, letter_case: LetterCase
) -> None:
    [outbound] = await claim_due(database)
    reports = await asyncio.gather(
        LetterAdapter(settings, database).send(outbound),
        LetterAdapter(settings, database).send(outbound),
    )
    assert reports[0].provider_id == reports[1].provider_id
    assert await count(database, PrintJob) == 1
    async with database.session() as session:
        job = (await session.exec(select(PrintJob))).one()
        kept = (
            await session.exec(select(Document).where(col(Document.id) == job.document_id))
        ).one()
    assert read_file(settings.document_store, kept).startswith(b"%PDF")


async def test_an_english_speaking_citizen_gets_an_english_letter(
    settings: Settings, database: Database, letter_case: LetterCase
) -> None:
    [outbound] = await claim_due(database)
    english = dataclasses.replace(outbound, language="en")
    await LetterAdapter(settings, database).send(english)
    async with database.session() as session:
        document = (await session.exec(select(Document))).one()
    text = pdf_text(read_file(settings.document_store, document))
    assert "Dear Zoë Jansen," in text and "Our reference" in text and "Kind regards," in text


async def test_a_letter_without_an_address_fails_permanently(
    settings: Settings, database: Database
) -> None:
    async with database.session() as session:
        await make_agency(session)
        party = await make_party(session)
        case = await make_case(session, party)
        outbox = OutboxItem(
            channel="letter", recipient=" ", template="reply", body="x", case_id=case.id
        )
        session.add(outbox)
    outbound = Outbound(
        id=outbox.id,
        channel="letter",
        recipient=" ",
        subject="s",
        body="x",
        language="nl",
        template="reply",
        case_id=case.id,
    )
    report = await LetterAdapter(settings, database).send(outbound)
    assert report.status == "permanent-failure"
    assert await count(database, PrintJob) == 0


async def test_a_citizen_who_prefers_letters_gets_the_notice_of_a_new_case_by_letter(
    settings: Settings, database: Database
) -> None:
    async with database.session() as session:
        await make_agency(session)
        party = await make_party(
            session,
            "Joëlle de Vries",
            preferred_channel="letter",
            postal_address="Markt 1\n1234 AB Ede",
        )
        case = await make_case(session, party)
    assert await deliver_once(database, build_adapters(settings, database)) == 1
    async with database.session() as session:
        outbox = (await session.exec(select(OutboxItem))).one()
        document = (await session.exec(select(Document))).one()
    assert outbox.template == "case_started"
    text = pdf_text(read_file(settings.document_store, document))
    assert "Geachte Joëlle de Vries," in text
    assert "Wij hebben uw aanvraag ontvangen en er een zaak voor geopend." in text
    assert case.reference in text and "Markt 1\n1234 AB Ede" in text
