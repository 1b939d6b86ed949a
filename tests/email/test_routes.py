"""POST /api/inbound/email: raw MIME from a mail provider, threaded onto its case."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
from asgi_lifespan import LifespanManager
from sqlmodel import col, select

from hub.app import create_app
from hub.config import Settings
from hub.db import Database
from hub.documents.service import read_file
from hub.models import Case, CaseEvent, Document, Message, OutboxItem, ReviewItem
from tests.builders import make_agency, make_case, make_party
from tests.email.mails import EXE, MAIL_SECRET, PDF, citizen_mail, reply_to

AUTH = {"Authorization": f"Bearer {MAIL_SECRET}", "Content-Type": "message/rfc822"}


async def post_mail(client: httpx.AsyncClient, raw: bytes) -> httpx.Response:
    return await client.post("/api/inbound/email", content=raw, headers=AUTH)


async def a_case(database: Database) -> Case:
    async with database.session() as session:
        await make_agency(session)
        party = await make_party(session, "Jan Jansen", email="jan@example.nl")
        return await make_case(session, party)


async def messages_on(database: Database, case: Case) -> list[Message]:
    async with database.session() as session:
        query = select(Message).where(Message.case_id == case.id, Message.channel == "email")
        return list((await session.exec(query)).all())


async def review_items(database: Database) -> list[ReviewItem]:
    async with database.session() as session:
        return list((await session.exec(select(ReviewItem))).all())


async def documents_of(database: Database, item: ReviewItem) -> list[Document]:
    """The files kept with a review item (the raw mail among them)."""
    async with database.session() as session:
        query = select(Document).where(Document.review_item_id == item.id)
        return list((await session.exec(query)).all())


async def events_on(database: Database, case: Case) -> list[CaseEvent]:
    async with database.session() as session:
        query = select(CaseEvent).where(CaseEvent.case_id == case.id)
        return list((await session.exec(query)).all())


def sent_mail(
    case: Case, *, recipient: str, body: str, provider_id: str, **fields: Any
) -> OutboxItem:
    """The outbox row of a reply the hub mailed to the case's party and the mail server
    accepted under the Message-ID ``provider_id``."""
    return OutboxItem(
        case_id=case.id,
        party_id=case.party_id,
        channel="email",
        recipient=recipient,
        template="reply",
        body=body,
        status="delivered",
        provider="smtp",
        provider_id=provider_id,
        **fields,
    )


@asynccontextmanager
async def client_with(
    settings: Settings, database: Database, **changes: Any
) -> AsyncIterator[httpx.AsyncClient]:
    """A client of a hub started with ``settings`` changed as given."""
    app = create_app(settings.model_copy(update=changes), database=database)
    async with LifespanManager(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://hub.test") as client:
            yield client


async def test_the_endpoint_is_off_without_a_secret(settings: Settings, database: Database) -> None:
    async with client_with(settings, database, inbound_mail_secret=None) as client:
        response = await post_mail(client, citizen_mail(to="x@reply.hub.test"))
    assert response.status_code == 404


async def test_a_wrong_or_missing_secret_is_refused(
    client: httpx.AsyncClient, database: Database
) -> None:
    raw = citizen_mail(to="x@reply.hub.test")
    wrong = await client.post(
        "/api/inbound/email", content=raw, headers={"Authorization": "Bearer guess"}
    )
    missing = await client.post("/api/inbound/email", content=raw)
    assert wrong.status_code == missing.status_code == 401
    assert wrong.headers["content-type"] == "application/problem+json"
    assert await review_items(database) == []


async def test_a_reply_lands_on_its_case_by_token(
    client: httpx.AsyncClient, database: Database
) -> None:
    case = await a_case(database)
    raw = citizen_mail(
        to=f"Gemeente <{reply_to(case)}>",
        message_id="<reply-1@example.nl>",
        authentication="mx.hub.test; spf=pass smtp.mailfrom=example.nl; dkim=pass; dmarc=pass",
    )
    response = await post_mail(client, raw)
    assert response.status_code == 200, response.text
    assert response.json()["outcome"] == "message"
    assert response.json()["case_id"] == str(case.id)

    [message] = await messages_on(database, case)
    assert message.direction == "inbound"
    assert message.identified_by == "reply_token"
    assert message.subject == "Re: Uw vraag"
    assert message.body == "Ik heb de stukken gestuurd."
    assert (
        message.original_body is not None and "> Wilt u de stukken sturen?" in message.original_body
    )
    assert message.external_id == "<reply-1@example.nl>"
    assert message.author_kind == "citizen" and message.author_name == "Jan Jansen"
    assert {k: message.meta[k] for k in ("spf", "dkim", "dmarc")} == {
        "spf": "pass",
        "dkim": "pass",
        "dmarc": "pass",
    }
    assert message.meta["authentication_by"] == "mx.hub.test"
    [event] = [e for e in await events_on(database, case) if e.kind == "message"]
    assert event.payload["channel"] == "email" and event.payload["identified_by"] == "reply_token"


async def test_the_verdict_is_none_when_absent_and_never_identifies(
    client: httpx.AsyncClient, database: Database
) -> None:
    case = await a_case(database)
    # A perfect verdict from a sender whose address is the party's still needs a token or a
    # thread: the mail goes to review.
    raw = citizen_mail(
        to="info@reply.hub.test",
        sender="jan@example.nl",
        authentication="mx.hub.test; spf=pass; dkim=pass; dmarc=pass",
    )
    assert (await post_mail(client, raw)).json()["outcome"] == "review"
    assert await messages_on(database, case) == []
    await post_mail(client, citizen_mail(to=reply_to(case)))
    [message] = await messages_on(database, case)
    assert {k: message.meta[k] for k in ("spf", "dkim", "dmarc")} == dict.fromkeys(
        ("spf", "dkim", "dmarc"), "none"
    )


async def test_a_reply_without_token_threads_by_in_reply_to(
    client: httpx.AsyncClient, database: Database
) -> None:
    case = await a_case(database)
    async with database.session() as session:
        session.add(
            sent_mail(
                case,
                recipient="jan@example.nl",
                body="Wilt u de stukken sturen?",
                provider_id="<0a1b2c@hub.test>",
            )
        )
    raw = citizen_mail(to="noreply@hub.test", in_reply_to="<0a1b2c@hub.test>")
    assert (await post_mail(client, raw)).json()["outcome"] == "message"
    [message] = await messages_on(database, case)
    assert message.identified_by == "thread_headers"


async def test_unmatched_mail_goes_to_review_with_the_raw_mail_kept(
    client: httpx.AsyncClient, database: Database, settings: Settings
) -> None:
    raw = citizen_mail(to="info@reply.hub.test", in_reply_to="<unknown@elsewhere.test>")
    response = await post_mail(client, raw)
    assert response.json()["outcome"] == "review"
    [item] = await review_items(database)
    assert item.reason == "unknown_thread"
    assert item.channel == "email" and item.sender == "jan@example.nl"
    assert item.body == "Ik heb de stukken gestuurd."
    [document] = await documents_of(database, item)
    assert document.content_type == "message/rfc822" and document.source == "raw_mail"
    assert read_file(settings.document_store, document) == raw

    await post_mail(client, citizen_mail(to="info@reply.hub.test"))
    assert {i.reason for i in await review_items(database)} == {"unknown_thread", "no_token"}


async def test_a_tampered_token_goes_to_review(
    client: httpx.AsyncClient, database: Database
) -> None:
    case = await a_case(database)
    address = reply_to(case)
    local, domain = address.split("@")
    tampered = local[:-3] + ("aaa" if not local.endswith("aaa") else "bbb") + "@" + domain
    response = await post_mail(client, citizen_mail(to=tampered))
    assert response.json()["outcome"] == "review"
    assert [i.reason for i in await review_items(database)] == ["token_invalid"]
    assert await messages_on(database, case) == []


async def test_a_token_never_reaches_another_partys_case(
    client: httpx.AsyncClient, database: Database
) -> None:
    case = await a_case(database)
    async with database.session() as session:
        other = await make_party(session, "Someone Else")
    # A token made for case X but another party does not attach to X.
    response = await post_mail(client, citizen_mail(to=reply_to(case, party_id=other.id)))
    assert response.json()["outcome"] == "review"
    # Nor does X's own token once X belongs to someone else.
    genuine = reply_to(case)
    async with database.session() as session:
        moved = await session.get(Case, case.id)
        assert moved is not None
        moved.party_id = other.id
        session.add(moved)
    response = await post_mail(client, citizen_mail(to=genuine))
    assert response.json()["outcome"] == "review"
    assert [i.reason for i in await review_items(database)] == [
        "token_party_mismatch",
        "token_party_mismatch",
    ]
    assert await messages_on(database, case) == []


async def test_the_same_mail_posted_twice_is_applied_once(
    client: httpx.AsyncClient, database: Database
) -> None:
    case = await a_case(database)
    raw = citizen_mail(to=reply_to(case), message_id="<twice@example.nl>")
    first = await post_mail(client, raw)
    second = await post_mail(client, raw)
    assert first.json()["outcome"] == "message"
    assert second.status_code == 200 and second.json()["outcome"] == "duplicate"
    assert len(await messages_on(database, case)) == 1
    unmatched = citizen_mail(to="info@reply.hub.test", message_id="<lost@example.nl>")
    await post_mail(client, unmatched)
    await post_mail(client, unmatched)
    assert len(await review_items(database)) == 1


async def test_attachments_are_kept_or_listed_with_the_reason(
    client: httpx.AsyncClient, database: Database, settings: Settings
) -> None:
    case = await a_case(database)
    big = PDF + b"%" * settings.max_upload_bytes
    raw = citizen_mail(
        to=reply_to(case),
        text="Zie bijlagen.",
        attachments=[
            ("loonstrook.pdf", "application/pdf", PDF),
            ("setup.exe", "application/pdf", EXE),
            ("groot.pdf", "application/pdf", big),
        ],
    )
    assert (await post_mail(client, raw)).json()["outcome"] == "message"
    [message] = await messages_on(database, case)
    async with database.session() as session:
        documents = (
            await session.exec(select(Document).where(Document.message_id == message.id))
        ).all()
    [document] = [d for d in documents if d.source == "email"]
    [raw_mail] = [d for d in documents if d.source == "raw_mail"]
    assert raw_mail.case_id is None and read_file(settings.document_store, raw_mail) == raw
    assert message.meta["raw_document_id"] == str(raw_mail.id)
    assert document.case_id == case.id
    assert document.filename == "loonstrook.pdf" and document.content_type == "application/pdf"
    assert read_file(settings.document_store, document) == PDF
    assert message.meta["attachments"][0]["document_id"] == str(document.id)
    refused = {r["filename"]: r["reason"] for r in message.meta["attachments_refused"]}
    assert set(refused) == {"setup.exe", "groot.pdf"}
    assert "PDF" in refused["setup.exe"]
    assert "bytes" in refused["groot.pdf"]
    [added] = [e for e in await events_on(database, case) if e.kind == "document_added"]
    assert added.payload["document_id"] == str(document.id)
    assert added.payload["source"] == "email"


async def test_too_large_or_not_a_mail_is_a_clear_error(
    settings: Settings, database: Database
) -> None:
    async with client_with(settings, database, max_mail_bytes=2000) as client:
        large = citizen_mail(to="x@reply.hub.test", text="x" * 5000)
        assert (await post_mail(client, large)).status_code == 413
        nonsense = await post_mail(client, b"\x00\x01 hello")
        assert nonsense.status_code == 422
        assert nonsense.headers["content-type"] == "application/problem+json"
    assert await review_items(database) == []
    async with database.session() as session:
        assert (await session.exec(select(col(Message.id)))).all() == []


async def test_a_mail_the_parser_fails_on_is_kept_for_review(
    client: httpx.AsyncClient, database: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken_parser(raw: bytes) -> None:
        raise UnicodeError("a mail nobody foresaw")

    monkeypatch.setattr("channels.email.inbound.parse_mail", broken_parser)
    raw = citizen_mail(to="info@reply.hub.test")
    response = await post_mail(client, raw)
    assert response.status_code == 200 and response.json()["outcome"] == "review"
    [item] = await review_items(database)
    assert item.reason == "unreadable"
    [document] = await documents_of(database, item)
    assert document.content_type == "message/rfc822"


REPORTS = Path(__file__).resolve().parents[1] / "fixtures" / "mail" / "reports"


def report(name: str, message_id: bytes) -> bytes:
    """A delivery status notification from the fixtures, about the mail ``message_id``."""
    return (REPORTS / f"{name}.eml").read_bytes().replace(b"{MESSAGE_ID}", message_id)


async def test_a_bounce_ends_the_delivery_and_passes_it_to_the_next_channel(
    client: httpx.AsyncClient, database: Database
) -> None:
    async with database.session() as session:
        await make_agency(session)
        party = await make_party(session, email="gone@example.nl", phone="+31612345678")
        case = await make_case(session, party)
        message = Message(
            case_id=case.id,
            party_id=party.id,
            channel="email",
            direction="outbound",
            author_kind="staff",
            body="Uw aanvraag is compleet.",
            delivery_status="delivered",
        )
        session.add(message)
        await session.flush()
        outbox = sent_mail(
            case,
            recipient="gone@example.nl",
            body="Uw aanvraag is compleet.",
            provider_id="<0f0f0f@hub.test>",
            message_id=message.id,
            meta={"tried": ["email"]},
        )
        session.add(outbox)
    delayed = report("postfix_delayed", b"0f0f0f@hub.test")
    response = await post_mail(client, delayed)
    assert response.json()["outcome"] == "delivery_status"
    async with database.session() as session:
        still = await session.get(OutboxItem, outbox.id)
    assert still is not None and still.status == "delivered"

    failed = report("postfix_failed", b"0f0f0f@hub.test")
    response = await post_mail(client, failed)
    assert response.json()["outcome"] == "delivery_status"
    assert response.json()["outbox_id"] == str(outbox.id)
    async with database.session() as session:
        bounced = await session.get(OutboxItem, outbox.id)
        shown = await session.get(Message, message.id)
        texts = (await session.exec(select(OutboxItem).where(OutboxItem.channel == "sms"))).all()
    events = await events_on(database, case)
    assert bounced is not None and bounced.status == "permanent-failure"
    assert bounced.last_error is not None and "5.1.1" in bounced.last_error
    assert shown is not None and shown.delivery_status == "permanent-failure"
    assert [(t.recipient, t.body) for t in texts] == [("+31612345678", "Uw aanvraag is compleet.")]
    [fallback] = [e for e in events if e.kind == "channel_fallback"]
    assert fallback.payload == {"from": "email", "to": "sms", "reason": "bounced"}
    assert await review_items(database) == []


async def test_a_bounce_of_a_mail_we_did_not_send_goes_to_review(
    client: httpx.AsyncClient, database: Database
) -> None:
    raw = report("postfix_failed", b"x@elsewhere")
    assert (await post_mail(client, raw)).json()["outcome"] == "review"
