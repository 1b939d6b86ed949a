"""Two citizens with one of everything each, and a representative of the first: the owner's
archive must hold all of the owner's and nothing of the other's."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from pathlib import Path

from sqlmodel import select

from hub.access.service import Viewer, record_access
from hub.db import Database
from hub.documents.service import store_document
from hub.events.service import Actor
from hub.messages.service import post_message
from hub.models import Case, Notice, Party, StaffMember
from hub.models.party import PreferenceChange
from hub.notices.consent import record_consent, register_topic
from tests.builders import make_agency, make_case, make_mandate, make_party, token_for

PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 64
HOSTILE_NAME = "Anna <script>alert(1)</script> de Vries"


@dataclass
class Person:
    party_id: uuid.UUID
    token: str
    # Texts that belong to this person alone: none may appear in anyone else's archive.
    secrets: dict[str, str]
    case_reference: str


@dataclass
class World:
    owner: Person
    other: Person
    representative: Person
    staff_token: str
    internal_note: str
    internal_file: str


async def _person(
    database: Database, *, name: str, tag: str, store: Path, staff: Viewer, agency: str
) -> Person:
    async with database.session() as session:
        party = await make_party(session, name, email=f"{tag}@example.nl")
        party.postal_address = f"{tag.title()}straat 1\n1234 AB Utrecht"
        session.add(
            PreferenceChange(
                party_id=party.id,
                preference="language",
                before="nl",
                after="nl",
                changed_by_kind="citizen",
                changed_by_name=name,
                source="portal",
            )
        )
        case = await make_case(session, party, agency_id=agency)
        citizen = Actor(kind="citizen", id=str(party.id), name=name)
        clerk = Actor(kind="staff", id=staff.id, name=staff.name, agency_id=agency)
        asked = await post_message(
            session,
            case=case,
            channel="portal",
            direction="inbound",
            author=citizen,
            body=f"Vraag van {tag}: waar blijft mijn toeslag?",
            identified_by="session",
        )
        await post_message(
            session,
            case=case,
            channel="email",
            direction="outbound",
            author=clerk,
            subject=f"Antwoord voor {tag}",
            body=f"Antwoord aan {tag}: binnen twee weken.",
        )
        await store_document(
            session,
            store=store,
            content=PNG + tag.encode(),
            filename=f"loonstrook-{tag}.png",
            source="upload",
            uploaded_by_kind="citizen",
            uploaded_by_id=str(party.id),
            max_bytes=1_000_000,
            case_id=case.id,
            party_id=party.id,
            message_id=asked.id,
        )
        session.add(
            Notice(
                agency_id=agency,
                party_id=party.id,
                topic_id=1,
                template_code="rent",
                dedupe_key=f"notice-{tag}",
                status="delivered",
                channel="portal",
                subject=f"Bericht voor {tag}",
                body=f"U heeft misschien recht op huurtoeslag, {tag}.",
            )
        )
        topic = await register_topic(
            session,
            agency_id=agency,
            code=f"topic-{tag}",
            title={"nl": f"Onderwerp {tag}", "en": f"Topic {tag}"},
            activity_code="proactive_info",
        )
        for granted in (True, False):
            await record_consent(
                session,
                party_id=party.id,
                topic=topic,
                granted=granted,
                recorded_by_kind="citizen",
                recorded_by_id=str(party.id),
                source="portal",
            )
        await record_access(
            session,
            staff,
            party_id=party.id,
            action="read",
            data="case",
            case=case,
            activity_code="vragen-beantwoorden",
        )
        reference = case.reference
        secrets = {
            "name": name,
            "bsn": party.bsn or "",
            "email": f"{tag}@example.nl",
            "address": f"{tag.title()}straat",
            "case_reference": reference,
            "message": f"Vraag van {tag}",
            "reply": f"Antwoord aan {tag}",
            "document": f"loonstrook-{tag}",
            "notice": f"Bericht voor {tag}",
            "consent_topic": f"topic-{tag}",
        }
        party_id = party.id
    return Person(party_id, await token_for(database, "citizen", party_id), secrets, reference)


async def make_world(database: Database, store: Path) -> World:
    async with database.session() as session:
        await make_agency(session, activities=("proactive_info", "vragen-beantwoorden"))
        # No password: hashing one costs a second, and this member of staff logs in by token.
        staff_member = StaffMember(
            agency_id="toeslagen", email="sanne@toeslagen.test", display_name="Sanne de Wit"
        )
        session.add(staff_member)
        await session.flush()
        staff = Viewer(
            kind="staff",
            id=str(staff_member.id),
            name=staff_member.display_name,
            agency_id="toeslagen",
        )
        staff_id = staff_member.id
    owner = await _person(
        database, name=HOSTILE_NAME, tag="anna", store=store, staff=staff, agency="toeslagen"
    )
    other = await _person(
        database, name="Bert Bakker", tag="bert", store=store, staff=staff, agency="toeslagen"
    )
    internal_note = "Interne notitie: citizen seemed nervous"
    internal_file = "intern-verslag"
    async with database.session() as session:
        owner_party = await session.get(Party, owner.party_id)
        assert owner_party is not None
        rep = await make_party(session, "Rita Vertegenwoordiger", email="rita@example.nl")
        await make_mandate(session, representative=rep, party=owner_party)
        case = (
            await session.exec(select(Case).where(Case.reference == owner.case_reference))
        ).one()
        note = await post_message(
            session,
            case=case,
            channel="portal",
            direction="internal",
            author=Actor(kind="staff", id=str(staff_id), name="Sanne de Wit"),
            body=internal_note,
        )
        await store_document(
            session,
            store=store,
            content=PNG + b"internal",
            filename=f"{internal_file}.png",
            source="upload",
            uploaded_by_kind="staff",
            max_bytes=1_000_000,
            case_id=case.id,
            party_id=owner.party_id,
            message_id=note.id,
        )
        rep_id = rep.id
    representative = Person(
        rep_id,
        await token_for(database, "citizen", rep_id),
        {"name": "Rita Vertegenwoordiger", "email": "rita@example.nl"},
        "",
    )
    staff_token = await token_for(database, "staff", staff_id)
    return World(owner, other, representative, staff_token, internal_note, internal_file)
