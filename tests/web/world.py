"""The people and cases the page tests and the browser tests share: an agency with a member
of staff who logs in with password and TOTP, a citizen whose case waits for a document from
him, whose question by mail nobody answered yet, whose chat waits in the queue, who allowed the
agency to tell him about rent allowance and got an important notice about it, and a second
citizen with a case of her own."""

from __future__ import annotations

import datetime as dt
import uuid
from dataclasses import dataclass

from sqlmodel import select

from hub.access.service import Viewer
from hub.cases.service import act_on_case
from hub.chat.service import ChatContext, start_chat
from hub.clock import local_today
from hub.db import Database
from hub.events.service import Actor
from hub.messages.service import post_message
from hub.models import ConsentTopic, Notice, ProcessingActivity
from hub.notices.consent import record_consent
from hub.review.service import add_review_item
from journeys.catalog import load_catalog
from journeys.engine import RequestInformation
from tests.builders import STAFF_PASSWORD, make_agency, make_case, make_party, make_staff

CITIZEN_EMAIL = "jan@example.nl"
STAFF_EMAIL = "sanne@toeslagen.test"
WHAT_IS_ASKED = "A copy of your rental agreement"
MAIL_BODY = "Ik heb een vraag <script>alert('x')</script> over mijn huur."
CHAT_TEXT = "Hallo, is er iemand?"
TOPIC_NL = "Huurtoeslag waar u misschien recht op hebt"
NOTICE_SUBJECT = "U hebt misschien recht op huurtoeslag"
# A PNG of one pixel: the smallest file the document store takes.
PNG = bytes.fromhex(
    "89504e470d0a1a0a0000000d4948445200000001000000010806000000"
    "1f15c4890000000d49444154789c6360000002000154a24f5d0000000049454e44ae426082"
)


@dataclass(frozen=True)
class PortalWorld:
    agency_id: str
    staff_id: uuid.UUID
    staff_email: str
    staff_password: str
    totp_secret: str
    citizen_id: uuid.UUID
    citizen_email: str
    waiting_case_id: uuid.UUID
    mail_case_id: uuid.UUID
    chat_case_id: uuid.UUID
    chat_id: uuid.UUID
    other_case_id: uuid.UUID
    notice_id: uuid.UUID
    topic_id: int
    review_item_id: uuid.UUID

    @property
    def path_values(self) -> dict[str, str]:
        """A value for each path parameter of the pages and forms, to visit them all."""
        return {
            "case_id": str(self.waiting_case_id),
            "conversation_id": str(self.chat_id),
            "notice_id": str(self.notice_id),
            "item_id": str(self.review_item_id),
        }


async def make_portal_world(database: Database) -> PortalWorld:
    catalog = load_catalog()
    async with database.session() as session:
        agency = await make_agency(session, "toeslagen", activities=("vragen-beantwoorden",))
        agency.name = "Dienst Toeslagen"
        session.add(agency)
        staff = await make_staff(session, "toeslagen", email=STAFF_EMAIL, name="Sanne de Wit")
        jan = await make_party(session, "Jan Jansen", email=CITIZEN_EMAIL)
        other = await make_party(session, "Petra de Vries", email="petra@example.nl")

        waiting = await make_case(session, jan)
        waiting.owner_id = staff.id
        today = local_today("Europe/Amsterdam")
        await act_on_case(
            session,
            catalog=catalog,
            case=waiting,
            action=RequestInformation(
                on=today, what=WHAT_IS_ASKED, deadline=today + dt.timedelta(days=14)
            ),
            actor=Actor(kind="staff", id=str(staff.id), name=staff.display_name),
        )

        by_mail = await make_case(session, jan, channel="email")
        await post_message(
            session,
            case=by_mail,
            channel="email",
            direction="inbound",
            author=Actor(kind="citizen", id=str(jan.id), name=jan.name),
            body=MAIL_BODY,
            subject="Vraag over huur",
            identified_by="reply_token",
        )

        viewer = Viewer(kind="citizen", id=str(jan.id), name=jan.name, party_id=jan.id)
        chat_case = await make_case(session, jan, channel="webchat")
        started = await start_chat(
            session,
            ChatContext(catalog=catalog, broker=None, timezone="Europe/Amsterdam"),
            viewer=viewer,
            case_id=chat_case.id,
            text=CHAT_TEXT,
        )
        others = await make_case(session, other)

        activity = (
            await session.exec(
                select(ProcessingActivity).where(ProcessingActivity.agency_id == "toeslagen")
            )
        ).one()
        assert activity.id is not None
        topic = ConsentTopic(
            agency_id="toeslagen",
            code="huurtoeslag-recht",
            title={"nl": TOPIC_NL, "en": "Rent allowance you may be entitled to"},
            processing_activity_id=activity.id,
        )
        session.add(topic)
        await session.flush()
        await record_consent(
            session,
            party_id=jan.id,
            topic=topic,
            granted=True,
            recorded_by_kind="citizen",
            recorded_by_id=str(jan.id),
            source="portal",
        )
        notice = Notice(
            agency_id="toeslagen",
            party_id=jan.id,
            topic_id=topic.id or 0,
            template_code="huurtoeslag-recht",
            dedupe_key="world-1",
            status="delivered",
            channel="portal",
            important=True,
            subject=NOTICE_SUBJECT,
            body="Uw huur is hoog voor uw inkomen. <b>Kijk</b> of u huurtoeslag kunt krijgen.",
        )
        session.add(notice)
        await session.flush()
        unmatched = await add_review_item(
            session,
            channel="email",
            sender="onbekend@example.nl",
            subject="Vraag zonder zaak",
            body="Ik weet niet bij welke zaak dit hoort.",
            reason="no_token",
        )
        assert staff.totp_secret is not None
        return PortalWorld(
            agency_id="toeslagen",
            staff_id=staff.id,
            staff_email=STAFF_EMAIL,
            staff_password=STAFF_PASSWORD,
            totp_secret=staff.totp_secret,
            citizen_id=jan.id,
            citizen_email=CITIZEN_EMAIL,
            waiting_case_id=waiting.id,
            mail_case_id=by_mail.id,
            chat_case_id=chat_case.id,
            chat_id=started.conversation.id,
            other_case_id=others.id,
            notice_id=notice.id,
            topic_id=topic.id or 0,
            review_item_id=unmatched.id,
        )
