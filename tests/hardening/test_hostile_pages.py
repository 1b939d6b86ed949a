"""Hostile content in every page, on SQLite and PostgreSQL: a world where everything a
citizen, a member of staff or an agency typed — names, addresses, messages and their
subjects, notes, chat lines, document names, what staff asked for, notices, consent topics,
mail nobody could place — holds script, markup, attribute breakers, javascript: URLs,
template syntax and unicode tricks; then every HTML page, as the person who may see it,
parsed: no element or attribute that came from the content, no script that did, no template
that ran. And the content did show: the test is not passing over empty pages."""

from __future__ import annotations

import dataclasses
import datetime as dt
import uuid
from html.parser import HTMLParser

import httpx
from fastapi import FastAPI
from sqlmodel import select

from hub.access.service import Viewer
from hub.auth.dependencies import SESSION_COOKIE
from hub.cases.service import act_on_case
from hub.chat.service import ChatContext, start_chat
from hub.clock import local_today
from hub.config import Settings
from hub.db import Database
from hub.documents.service import store_document
from hub.events.service import Actor
from hub.messages.service import post_message
from hub.models import ConsentTopic, Notice, ProcessingActivity
from hub.notices.consent import record_consent
from hub.review.service import add_review_item
from journeys.catalog import load_catalog
from journeys.engine import RequestInformation
from tests.builders import make_agency, make_case, make_mandate, make_party, make_staff, token_for
from tests.web.routes import audience, concrete_path, html_pages

# Each payload tries one way out of the text it is put in. "hostile" marks what must never
# come out as markup; "49" is what template syntax would print if it ran.
PAYLOADS = (
    "<script>hostile()</script>",
    '"><hostile-tag data-hostile="1">',
    "'><img src=x onerror=hostile() data-hostile='1'>",
    "</textarea></title></script><hostile-tag>",
    '<a href="javascript:hostile()">klik</a>',
    "javascript:hostile()",
    "<svg/onload=hostile()>",
    "<!--<hostile-tag>-->",
    "{{ 'hostile' ~ 7*7 }}{% raw %}",
    "\u202egnp.exe\u200b\ufeff",
    "\uff1cscript\uff1ehostile()\uff1c/script\uff1e",  # fullwidth < and >
    "&lt;hostile-tag&gt;",
)


def hostile(field: str) -> str:
    """The text typed into ``field``: its label, to find it on a page, and every payload."""
    return f"F-{field} " + " ".join(PAYLOADS)


def hostile_line(field: str) -> str:
    """For a short field (a name, a subject: at most 200 characters), the worst of them."""
    text = f"F-{field} " + "".join(PAYLOADS[index] for index in (0, 1, 2, 8, 9))
    assert len(text) <= 200
    return text


@dataclasses.dataclass(frozen=True)
class HostileWorld:
    citizen_id: uuid.UUID
    staff_id: uuid.UUID
    path_values: dict[str, str]


async def make_hostile_world(database: Database, settings: Settings) -> HostileWorld:
    catalog = load_catalog()
    async with database.session() as session:
        agency = await make_agency(session, "toeslagen", activities=("vragen-beantwoorden",))
        agency.name = hostile_line("agency")
        session.add(agency)
        staff = await make_staff(session, "toeslagen", name=hostile_line("staff-name"))
        jan = await make_party(
            session,
            hostile_line("party-name"),
            email="jan@example.nl",
            postal_address=hostile("postal-address"),
        )
        helper = await make_party(session, hostile_line("representative-name"))
        await make_mandate(session, representative=helper, party=jan)
        case = await make_case(session, jan, channel="email")
        case.owner_id = staff.id
        staff_actor = Actor(kind="staff", id=str(staff.id), name=staff.display_name)
        citizen = Actor(kind="citizen", id=str(jan.id), name=jan.name)
        today = local_today("Europe/Amsterdam")
        await act_on_case(
            session,
            catalog=catalog,
            case=case,
            action=RequestInformation(
                on=today, what=hostile("asked-for"), deadline=today + dt.timedelta(days=14)
            ),
            actor=staff_actor,
        )
        message = await post_message(
            session,
            case=case,
            channel="email",
            direction="inbound",
            author=citizen,
            body=hostile("mail-body"),
            subject=hostile_line("mail-subject"),
            identified_by="reply_token",
        )
        await post_message(
            session,
            case=case,
            channel="internal",
            direction="internal",
            author=staff_actor,
            body=hostile("note"),
        )
        await post_message(
            session,
            case=case,
            channel="email",
            direction="outbound",
            author=staff_actor,
            body=hostile("reply"),
            subject=hostile_line("subject-of-reply"),
        )
        png = bytes.fromhex(
            "89504e470d0a1a0a0000000d4948445200000001000000010806000000"
            "1f15c4890000000d49444154789c6360000002000154a24f5d0000000049454e44ae426082"
        )
        await store_document(
            session,
            store=settings.document_store,
            content=png,
            # The store keeps no path parts and none of <>:"|?* in a name: what is left of
            # an attack is tried.
            filename="F-document-name ' onmouseover=hostile() data-hostile=1 &amp;\u202egnp.png",
            source="upload",
            uploaded_by_kind="citizen",
            uploaded_by_id=str(jan.id),
            max_bytes=settings.max_upload_bytes,
            case_id=case.id,
            party_id=jan.id,
            message_id=message.id,
        )
        viewer = Viewer(kind="citizen", id=str(jan.id), name=jan.name, party_id=jan.id)
        started = await start_chat(
            session,
            ChatContext(catalog=catalog, broker=None, timezone="Europe/Amsterdam"),
            viewer=viewer,
            case_id=case.id,
            text=hostile("chat"),
        )
        activity = (
            await session.exec(
                select(ProcessingActivity).where(ProcessingActivity.agency_id == "toeslagen")
            )
        ).one()
        assert activity.id is not None
        topic = ConsentTopic(
            agency_id="toeslagen",
            code="huurtoeslag",
            title={"nl": hostile_line("topic"), "en": hostile_line("topic")},
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
            template_code="huurtoeslag",
            dedupe_key="hostile-1",
            status="delivered",
            channel="portal",
            important=True,
            subject=hostile_line("notice-subject"),
            body=hostile("notice-body"),
            case_id=case.id,
        )
        session.add(notice)
        await session.flush()
        unplaced = await add_review_item(
            session,
            channel="email",
            sender=hostile_line("review-sender"),
            subject=hostile_line("review-subject"),
            body=hostile("review-body"),
            reason="no_token",
        )
        return HostileWorld(
            citizen_id=jan.id,
            staff_id=staff.id,
            path_values={
                "case_id": str(case.id),
                "conversation_id": str(started.conversation.id),
                "notice_id": str(notice.id),
                "item_id": str(unplaced.id),
            },
        )


class PageParser(HTMLParser):
    """What the browser would make of a page: its elements and attributes, the text of its
    scripts, and its readable text."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.elements: list[tuple[str, list[tuple[str, str | None]]]] = []
        self.scripts: list[str] = []
        self.text: list[str] = []
        self._in_script = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.elements.append((tag, attrs))
        self._in_script = tag == "script"

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.elements.append((tag, attrs))

    def handle_endtag(self, tag: str) -> None:
        if tag == "script":
            self._in_script = False

    def handle_data(self, data: str) -> None:
        (self.scripts if self._in_script else self.text).append(data)


def injected(html: str) -> list[str]:
    """Every sign of markup that came from the content rather than from the template."""
    page = PageParser()
    page.feed(html)
    page.close()
    found = []
    for tag, attrs in page.elements:
        if tag.startswith("hostile"):
            found.append(f"element <{tag}>")
        for name, value in attrs:
            if name.startswith("on") or name == "data-hostile":
                found.append(f"attribute {name} on <{tag}>")
            if name in ("href", "src", "action", "formaction") and (
                value or ""
            ).strip().lower().startswith("javascript:"):
                found.append(f"{name}={value!r} on <{tag}>")
    found += [f"script {text[:60]!r}" for text in page.scripts if "hostile" in text]
    if "hostile49" in html:
        found.append("a template ran")
    return found


def readable_text(html: str) -> str:
    page = PageParser()
    page.feed(html)
    page.close()
    return " ".join(page.text)


# Fields that must show on some page; a field missing from this set and from every page
# would be hostile content the test never saw rendered. No name is the start of another.
SHOWN = {
    "party-name",
    "staff-name",
    "asked-for",
    "mail-body",
    "mail-subject",
    "note",
    "reply",
    "subject-of-reply",
    "document-name",
    "chat",
    "topic",
    "notice-subject",
    "notice-body",
    "review-sender",
    "review-subject",
    "review-body",
}


async def test_no_page_lets_typed_content_out_as_markup(
    app: FastAPI, client: httpx.AsyncClient, database: Database, settings: Settings
) -> None:
    world = await make_hostile_world(database, settings)
    transport = client._transport
    citizen_token = await token_for(database, "citizen", world.citizen_id)
    staff_token = await token_for(database, "staff", world.staff_id)
    shown: set[str] = set()
    async with (
        httpx.AsyncClient(transport=transport, base_url="http://hub.test") as staff,
        httpx.AsyncClient(transport=transport, base_url="http://hub.test") as citizen,
        httpx.AsyncClient(transport=transport, base_url="http://hub.test") as anyone,
    ):
        citizen.cookies.set(SESSION_COOKIE, citizen_token)
        staff.cookies.set(SESSION_COOKIE, staff_token)
        browsers = {"staff": staff, "citizen": citizen, "anyone": anyone}
        pages = html_pages(app)
        assert len(pages) > 15
        for route in pages:
            path = concrete_path(route, world.path_values)
            for lang in ("nl", "en"):
                browser = browsers[audience(route.route)]
                browser.cookies.set("hub_lang", lang)
                page = await browser.get(path)
                assert page.status_code == 200, (path, page.status_code)
                assert injected(page.text) == [], path
                text = readable_text(page.text)
                shown |= {field for field in SHOWN if f"F-{field}" in text}
    assert shown == SHOWN, f"never shown: {sorted(SHOWN - shown)}"
