"""A case with a letter reply in the outbox: two agencies, a citizen with a postal address,
and a member of staff who answered by letter."""

from __future__ import annotations

import uuid
from dataclasses import dataclass

import pytest
from sqlmodel.ext.asyncio.session import AsyncSession

from hub.db import Database
from hub.events.service import Actor
from hub.messages.service import reply
from hub.models import Case, Message, Party, StaffMember
from tests.builders import make_agency, make_case, make_party

ADDRESS = "Oudegracht 101\n3511 AB Utrecht"
BODY = "Uw vraag over de huurtoeslag is beantwoord.\nDe coëfficiënt is € 1,05 — zie de bijlage."


@dataclass
class LetterCase:
    case: Case
    party: Party
    staff: StaffMember
    message: Message

    @property
    def case_id(self) -> uuid.UUID:
        return self.case.id


async def staff_member(session: AsyncSession, agency_id: str, name: str) -> StaffMember:
    """A member of staff who logs in by token only (no password to hash: faster tests)."""
    staff = StaffMember(
        agency_id=agency_id, email=f"{uuid.uuid4().hex}@{agency_id}.test", display_name=name
    )
    session.add(staff)
    await session.flush()
    return staff


@pytest.fixture
async def letter_case(database: Database) -> LetterCase:
    async with database.session() as session:
        await make_agency(session, "toeslagen", activities=("vragen-beantwoorden",))
        await make_agency(session, "belastingen")
        party = await make_party(session, "Zoë Jansen", postal_address=ADDRESS)
        case = await make_case(session, party, agency_id="toeslagen")
        staff = await staff_member(session, "toeslagen", "Sanne de Wit")
        case.owner_id = staff.id
        session.add(case)
        author = Actor(
            kind="staff", id=str(staff.id), name=staff.display_name, agency_id="toeslagen"
        )
        message = await reply(session, case=case, author=author, body=BODY, channel="letter")
    return LetterCase(case=case, party=party, staff=staff, message=message)
