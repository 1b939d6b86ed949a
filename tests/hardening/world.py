"""The world the authorization matrix tries every route in: two agencies (A is ``toeslagen``,
B is ``rdw``), a citizen who owns a case at A with something of everything on it, and the
intruders — another citizen, B's staff, B's system key, and two people who once represented
the owner (a mandate that expired, one that was revoked).

Everything the owner holds is built as the owner or A would build it, through the API where
the API builds it; the strings that must never reach an intruder are in ``World.secrets``."""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import uuid
from dataclasses import dataclass, field
from typing import Literal

import httpx
from sqlmodel import select

from hub.auth.sessions import create_session
from hub.config import Settings
from hub.db import Database, utcnow
from hub.models import (
    Case,
    Document,
    OutboxItem,
    PrintJob,
    ReviewItem,
    WebhookDelivery,
)
from hub.notices.consent import record_consent, register_topic
from hub.notices.service import save_template
from hub.review.service import add_review_item
from tests.builders import bearer, key_for, make_agency, make_case, make_mandate, make_party
from tests.live.harness import quick_staff

AGENCY_A = "toeslagen"
AGENCY_B = "rdw"
OWNER_NAME = "Jan Geheimnaam"
# The intruders who are people: none of them may turn up in the owner's access log.
INTRUDER_NAMES = ("Petra Anders", "Bram van Buiten", "Rita Verlopen", "Rob Ingetrokken")
OWNER_EMAIL = "jan.geheimnaam@example.nl"
OWNER_PHONE = "+31612345678"
MESSAGE_TEXT = "Mijn huurcontract loopt af op de Geheimgracht 7"
NOTE_TEXT = "Interne notitie: schuld bij de Geheimbank"
CHAT_TEXT = "Chatregel over mijn geheime inkomen"
DOCUMENT_NAME = "geheim-huurcontract-jan.png"
NOTICE_ALLOWANCE = "geheimtoeslag"
WEBHOOK_URL = "https://zaken.toeslagen.example/geheime-haak"
# A PNG of one pixel: the smallest file the document store takes.
PNG = bytes.fromhex(
    "89504e470d0a1a0a0000000d4948445200000001000000010806000000"
    "1f15c4890000000d49444154789c6360000002000154a24f5d0000000049454e44ae426082"
)

Intruder = Literal["other_citizen", "staff_b", "key_b", "rep_expired", "rep_revoked"]
Rightful = Literal["owner", "staff_a", "key_a"]
INTRUDERS: tuple[Intruder, ...] = (
    "other_citizen",
    "staff_b",
    "key_b",
    "rep_expired",
    "rep_revoked",
)


@dataclass(frozen=True)
class Caller:
    """How one person or system calls the hub: a bearer credential for the API, and the
    cookies a browser of theirs would send to the pages."""

    secret: str
    session_id: uuid.UUID | None = None
    acting_for: uuid.UUID | None = None
    subject: tuple[Literal["citizen", "staff"], uuid.UUID] | None = None

    @property
    def headers(self) -> dict[str, str]:
        return bearer(self.secret)


@dataclass
class World:
    owner_id: uuid.UUID
    owner_bsn: str
    other_bsn: str
    case_id: uuid.UUID
    case_reference: str
    conversation_id: uuid.UUID
    document_id: uuid.UUID
    notice_id: uuid.UUID
    topic_id: int
    mandate_id: uuid.UUID
    review_item_id: uuid.UUID
    notice_job_id: uuid.UUID
    print_job_id: uuid.UUID
    subscription_id: uuid.UUID
    delivery_id: uuid.UUID
    staff_a_id: uuid.UUID
    b_conversation_id: uuid.UUID  # another citizen's chat at agency B
    settings: Settings
    callers: dict[str, Caller] = field(default_factory=dict)

    @property
    def path_values(self) -> dict[str, str]:
        """The owner's (and agency A's) object for each path parameter name."""
        return {
            "case_id": str(self.case_id),
            "conversation_id": str(self.conversation_id),
            "document_id": str(self.document_id),
            "notice_id": str(self.notice_id),
            "topic_id": str(self.topic_id),
            "mandate_id": str(self.mandate_id),
            "item_id": str(self.review_item_id),
            "job_id": str(self.notice_job_id),
            "subscription_id": str(self.subscription_id),
            "delivery_id": str(self.delivery_id),
            "party_id": str(self.owner_id),
            "code": "rent",
            "channel": "portal",
            "language": "nl",
            "lang": "en",
        }

    @property
    def secrets(self) -> dict[str, bytes]:
        """What is the owner's: none of it may reach an intruder, byte for byte."""
        named = {
            "case_id": str(self.case_id),
            "case_reference": self.case_reference,
            "owner_id": str(self.owner_id),
            "owner_name": OWNER_NAME,
            "bsn": self.owner_bsn,
            "email": OWNER_EMAIL,
            "phone": OWNER_PHONE,
            "message": MESSAGE_TEXT,
            "note": NOTE_TEXT,
            "chat": CHAT_TEXT,
            "document_name": DOCUMENT_NAME,
            "notice_text": NOTICE_ALLOWANCE,
            "conversation_id": str(self.conversation_id),
            "document_id": str(self.document_id),
            "notice_id": str(self.notice_id),
        }
        return {name: value.encode() for name, value in named.items()}


async def login(
    database: Database, kind: Literal["citizen", "staff"], subject: uuid.UUID
) -> Caller:
    async with database.session() as session:
        login, token = await create_session(
            session, subject_kind=kind, subject_id=subject, identified_by="test", hours=1
        )
    return Caller(token, session_id=login.id, subject=(kind, subject))


async def _created(response: httpx.Response) -> dict[str, object]:
    assert response.status_code in (200, 201, 202), response.text
    answer: dict[str, object] = response.json()
    return answer


async def make_world(database: Database, client: httpx.AsyncClient, settings: Settings) -> World:
    """Builds the world through the services and, where the owner or agency A would use it,
    through the API (each of those calls a first proof that the route works for them)."""
    async with database.session() as session:
        for code in (AGENCY_A, AGENCY_B):
            await make_agency(session, code, activities=("vragen-beantwoorden", "proactive_info"))
        staff_a = await quick_staff(session, AGENCY_A, "Sanne de Wit")
        staff_b = await quick_staff(session, AGENCY_B, INTRUDER_NAMES[1])
        owner = await make_party(session, OWNER_NAME, email=OWNER_EMAIL, phone=OWNER_PHONE)
        other = await make_party(session, INTRUDER_NAMES[0], email="petra@example.nl")
        rep_expired = await make_party(session, INTRUDER_NAMES[2], email="rita@example.nl")
        rep_revoked = await make_party(session, INTRUDER_NAMES[3], email="rob@example.nl")
        trusted = await make_party(session, "Tom Vertrouwd", email="tom@example.nl")
        # Each intruder has a case of their own, so that no list is empty by accident.
        await make_case(session, other)
        await make_case(session, rep_expired)
        b_case = await make_case(session, other, agency_id=AGENCY_B)
        case = await make_case(session, owner, agency_id=AGENCY_A, channel="email")
        case.owner_id = staff_a.id
        session.add(case)
        await make_mandate(
            session,
            representative=rep_expired,
            party=owner,
            valid_until=utcnow() - dt.timedelta(hours=1),
        )
        await make_mandate(session, representative=rep_revoked, party=owner, revoked=True)
        mandate = await make_mandate(session, representative=trusted, party=owner)
        topic = await register_topic(
            session,
            agency_id=AGENCY_A,
            code="allowances",
            title={"nl": "Toeslagen waar u recht op heeft", "en": "Allowances you may get"},
            activity_code="proactive_info",
        )
        for channel in ("portal", "email"):
            await save_template(
                session,
                agency_id=AGENCY_A,
                code="rent",
                channel=channel,
                language="nl",
                subject="Recht op {{ allowance }}",
                body="Beste {{ party_name }}, u heeft mogelijk recht op {{ allowance }}.",
            )
        await record_consent(
            session,
            party_id=owner.id,
            topic=topic,
            granted=True,
            recorded_by_kind="citizen",
            recorded_by_id=str(owner.id),
            source="portal",
        )
        item = await add_review_item(
            session,
            channel="email",
            sender="onbekend@example.nl",
            subject="Vraag zonder zaak",
            body="Ik weet niet bij welke zaak dit hoort.",
            reason="no_token",
        )
        ids = (owner.id, other.id, staff_a.id, staff_b.id, rep_expired.id, rep_revoked.id)
        trusted_id = trusted.id
        b_case_id = b_case.id
        assert owner.bsn is not None and other.bsn is not None
        owner_bsn, other_bsn, case_id, reference = owner.bsn, other.bsn, case.id, case.reference
        topic_id, mandate_id, item_id = topic.id or 0, mandate.id, item.id

    owner_id, other_id, staff_a_id, staff_b_id, rep_expired_id, rep_revoked_id = ids
    callers = {
        "owner": await login(database, "citizen", owner_id),
        "staff_a": await login(database, "staff", staff_a_id),
        "key_a": Caller(await key_for(database, AGENCY_A)),
        "other_citizen": await login(database, "citizen", other_id),
        "staff_b": await login(database, "staff", staff_b_id),
        "key_b": Caller(await key_for(database, AGENCY_B)),
    }
    reps = (
        ("rep_expired", rep_expired_id),
        ("rep_revoked", rep_revoked_id),
        ("rep_live", trusted_id),
    )
    for name, rep_id in reps:
        rep = await login(database, "citizen", rep_id)
        # The browser says it acts for the owner: for the two whose mandate ended, the cookie
        # must grant nothing; the live one (the proof) acts for the owner by it.
        callers[name] = dataclasses.replace(rep, acting_for=owner_id)

    as_owner, staff, key = (callers[n].headers for n in ("owner", "staff_a", "key_a"))
    await _created(
        await client.post(
            f"/api/cases/{case_id}/messages", json={"body": MESSAGE_TEXT}, headers=as_owner
        )
    )
    await _created(
        await client.post(f"/api/cases/{case_id}/notes", json={"text": NOTE_TEXT}, headers=staff)
    )
    chat = await _created(
        await client.post(
            "/api/chats", json={"case_id": str(case_id), "text": CHAT_TEXT}, headers=as_owner
        )
    )
    conversation = chat["chat"]
    assert isinstance(conversation, dict)
    b_chat = await _created(
        await client.post(
            "/api/chats",
            json={"case_id": str(b_case_id), "text": "Een vraag bij de RDW"},
            headers=callers["other_citizen"].headers,
        )
    )
    b_conversation = b_chat["chat"]
    assert isinstance(b_conversation, dict)
    document = await _created(
        await client.post(
            f"/api/cases/{case_id}/documents",
            files={"file": (DOCUMENT_NAME, PNG, "image/png")},
            headers=as_owner,
        )
    )
    document_id = document["id"]
    personalisation = {"allowance": NOTICE_ALLOWANCE}
    notice = await _created(
        await client.post(
            "/api/notices",
            json={
                "bsn": owner_bsn,
                "topic": "allowances",
                "template": "rent",
                "personalisation": personalisation,
                "case_id": str(case_id),
            },
            headers=key,
        )
    )
    rows = [
        {
            "bsn": owner_bsn,
            "topic": "allowances",
            "template": "rent",
            "personalisation": personalisation,
        },
        {"bsn": owner_bsn, "topic": "no-such-topic", "template": "rent"},
    ]
    job = await _created(
        await client.post(
            "/api/notice-jobs",
            content="\n".join(json.dumps(row) for row in rows).encode(),
            headers=key | {"Content-Type": "application/x-ndjson"},
        )
    )
    subscription = await _created(
        await client.post(
            "/api/webhook-subscriptions",
            json={"url": WEBHOOK_URL, "event_types": ["nl.interactionhub.case.message-received"]},
            headers=key,
        )
    )
    async with database.session() as session:
        letter = OutboxItem(
            case_id=case_id,
            party_id=owner_id,
            channel="letter",
            recipient=f"{OWNER_NAME}, Geheimgracht 7, Amsterdam",
            template="letter",
            body=MESSAGE_TEXT,
        )
        session.add(letter)
        pdf = Document(
            case_id=case_id,
            party_id=owner_id,
            filename="brief-geheimnaam.pdf",
            content_type="application/pdf",
            size=1,
            sha256="0" * 64,
            storage_key="missing",
            source="letter",
            uploaded_by_kind="system",
        )
        session.add(pdf)
        await session.flush()
        job_row = PrintJob(
            outbox_id=letter.id,
            agency_id=AGENCY_A,
            case_id=case_id,
            document_id=pdf.id,
            recipient=letter.recipient,
        )
        delivery = WebhookDelivery(
            subscription_id=uuid.UUID(str(subscription["id"])),
            event={"subject": str(case_id), "data": {"reference": reference}},
            status="failed",
        )
        session.add_all([job_row, delivery])
        await session.flush()
        print_job_id, delivery_id = job_row.id, delivery.id
        assert (await session.exec(select(Case).where(Case.id == case_id))).one()
        assert await session.get(ReviewItem, item_id) is not None

    return World(
        owner_id=owner_id,
        owner_bsn=owner_bsn,
        other_bsn=other_bsn,
        case_id=case_id,
        case_reference=reference,
        conversation_id=uuid.UUID(str(conversation["id"])),
        document_id=uuid.UUID(str(document_id)),
        notice_id=uuid.UUID(str(notice["id"])),
        topic_id=topic_id,
        mandate_id=mandate_id,
        review_item_id=item_id,
        notice_job_id=uuid.UUID(str(job["id"])),
        print_job_id=print_job_id,
        subscription_id=uuid.UUID(str(subscription["id"])),
        delivery_id=delivery_id,
        staff_a_id=staff_a_id,
        b_conversation_id=uuid.UUID(str(b_conversation["id"])),
        settings=settings,
        callers=callers,
    )
