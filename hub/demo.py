"""Demo data for development: agencies, teams, staff, citizens, a business, a representative
with a mandate, and cases in every stage of every journey and with every result.

Loaded by ``hub demo``; refused outside development mode, since its logins are public.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
from collections import deque
from dataclasses import dataclass, field
from itertools import count

from sqlmodel import select
from sqlmodel.ext.asyncio.session import AsyncSession

from hub.agencies.service import (
    add_processing_activity,
    add_to_team,
    create_agency,
    create_staff,
    create_team,
)
from hub.auth.api_keys import issue_key
from hub.cases.service import act_on_case, open_case
from hub.clock import local_today, start_of_local_day
from hub.db import Database, utcnow
from hub.events.service import Actor
from hub.messages.service import post_message
from hub.models import Agency, Case, Mandate, Party, StaffMember
from hub.parties.service import add_address, bsn_is_valid
from hub.review.service import add_review_item
from journeys.catalog import Catalog
from journeys.engine import Action, Advance, Decide, Extend, RequestInformation, Suspend, Withdraw
from journeys.model import ANY_AGENCY, JourneyDefinition

MISSING_INFORMATION = "De ontbrekende gegevens uit de toelichting bij uw zaak"
DEMO_PASSWORD = "demo-password-123"  # noqa: S105 - development demo data, printed on purpose
WEEKDAYS = {day: [["08:30", "17:00"]] for day in ("mon", "tue", "wed", "thu", "fri")}

AGENCIES = {
    "toeslagen": "Dienst Toeslagen",
    "uwv": "UWV",
    "gemeente-utrecht": "Gemeente Utrecht",
    "rdw": "RDW",
    "kvk": "Kamer van Koophandel",
    "belastingdienst": "Belastingdienst",
}
ACTIVITIES = {
    ("toeslagen", "toeslagen-aanvraag"): (
        "Deciding on and paying allowances",
        "Algemene wet inkomensafhankelijke regelingen",
    ),
    ("uwv", "uwv-ww"): ("Deciding on unemployment benefit", "Werkloosheidswet"),
    ("uwv", "schuldhulpverlening"): (
        "Providing income data for debt assistance",
        "Wet gemeentelijke schuldhulpverlening",
    ),
    ("gemeente-utrecht", "omgevingsvergunning"): ("Deciding on building permits", "Omgevingswet"),
    ("gemeente-utrecht", "parkeren"): ("Parking permits", "Gemeentewet, parkeerverordening"),
    ("gemeente-utrecht", "schuldhulpverlening"): (
        "Debt assistance",
        "Wet gemeentelijke schuldhulpverlening",
    ),
    ("rdw", "rdw-rijbewijs"): ("Issuing driving licences", "Wegenverkeerswet 1994"),
    ("kvk", "kvk-handelsregister"): ("Keeping the trade register", "Handelsregisterwet 2007"),
    ("belastingdienst", "kvk-handelsregister"): (
        "Issuing VAT numbers to new businesses",
        "Wet op de omzetbelasting 1968",
    ),
    ("belastingdienst", "schuldhulpverlening"): (
        "Payment arrangements in debt assistance",
        "Invorderingswet 1990",
    ),
}
QUESTIONS = (
    "vragen-beantwoorden",
    "Answering questions from citizens and businesses on every channel",
    "Algemene wet bestuursrecht art. 2:1 en 2:3",
)
DESK_PURPOSE = (
    "balie-zoeken",
    "Finding a visitor's cases at the desk to help or refer them",
    "Algemene wet bestuursrecht art. 2:3 (doorzenden)",
)
STAFF = [
    ("toeslagen", "sanne@toeslagen.demo", "Sanne de Wit", "agent"),
    ("toeslagen", "ahmed@toeslagen.demo", "Ahmed El Amrani", "supervisor"),
    ("uwv", "lotte@uwv.demo", "Lotte Visser", "agent"),
    ("gemeente-utrecht", "pieter@utrecht.demo", "Pieter Bos", "agent"),
    ("gemeente-utrecht", "fatima@utrecht.demo", "Fatima Yilmaz", "supervisor"),
    ("rdw", "joost@rdw.demo", "Joost Smit", "agent"),
    ("kvk", "eva@kvk.demo", "Eva Mulder", "agent"),
    ("belastingdienst", "daan@belastingdienst.demo", "Daan Meijer", "admin"),
]
CITIZENS = [
    ("Jan Jansen", "jan@example.nl", "+31612345001", "nl", []),
    ("Maria Pereira", "maria@example.nl", "+31612345002", "en", []),
    ("Kees Bakker", "kees@example.nl", "+31612345003", "nl", ["plain_language"]),
    ("Petra de Vries", "petra@example.nl", "+31612345004", "nl", []),
]
BUSINESS = ("Bakkerij De Korenschoof B.V.", "90012345", "info@korenschoof.example.nl")


def demo_totp_secret(email: str) -> str:
    """A demo staff member's TOTP secret, derived from their address so that scripts (and
    people) can log in as them: demo logins are public by design."""
    return base64.b32encode(hashlib.sha256(f"demo-totp:{email}".encode()).digest()[:20]).decode()


@dataclass
class DemoSummary:
    staff: list[tuple[str, str, str, str]] = field(
        default_factory=list
    )  # email, name, agency, totp
    citizens: list[tuple[str, str]] = field(default_factory=list)  # name, email
    keys: list[tuple[str, str]] = field(default_factory=list)  # agency, key
    cases: int = 0
    already_loaded: bool = False


def demo_bsns() -> list[str]:
    """Valid BSNs in the test range 999 99x xxx used by the Dutch government for testing."""
    return [str(n) for n in range(999990000, 999999999) if bsn_is_valid(str(n))][:20]


def paths_to_stages(definition: JourneyDefinition) -> dict[str, list[str]]:
    """The shortest chain of stage ids from the first stage to each reachable stage."""
    first = definition.initial_stage.id
    paths = {first: [first]}
    queue = deque([first])
    while queue:
        current = queue.popleft()
        for target in definition.stage(current).to:
            if target not in paths:
                paths[target] = [*paths[current], target]
                queue.append(target)
    return paths


def demo_scenarios(definition: JourneyDefinition) -> list[tuple[str, list[Action], int]]:
    """(label, actions after start, days ago the case started): every stage, every result,
    and a case waiting for the citizen, one suspended and one extended."""
    paths = paths_to_stages(definition)
    scenarios: list[tuple[str, list[Action], int]] = []
    day = dt.date(2000, 1, 1)  # placeholder; dates are set when played

    def walk(path: list[str]) -> list[Action]:
        return [Advance(on=day, to=stage) for stage in path[1:]]

    for index, stage in enumerate(definition.stages):
        if stage.id in paths:
            scenarios.append((f"stage:{stage.id}", walk(paths[stage.id]), 5 + 4 * index))
    for result in definition.results:
        if result.id == "withdrawn":
            scenarios.append(("result:withdrawn", [Withdraw(on=day, reason="Not needed")], 20))
            continue
        deciding = next((s for s in definition.stages if result.id in s.decides), None)
        if deciding is not None and deciding.id in paths:
            actions = [*walk(paths[deciding.id]), Decide(on=day, result=result.id)]
            scenarios.append((f"result:{result.id}", actions, 60))
    government = next(
        (s for s in definition.stages if s.turn == "government" and s.id in paths), None
    )
    if government is not None:
        base = walk(paths[government.id])
        scenarios.append(
            (
                "waiting",
                [*base, RequestInformation(on=day, what=MISSING_INFORMATION)],
                12,
            )
        )
        scenarios.append(
            ("suspended", [*base, Suspend(on=day, reason="Waiting for a court ruling")], 30)
        )
        scenarios.append(
            (
                "extended",
                [*base, Extend(on=day, reason="Advice takes longer", days=14, unit="calendar")],
                40,
            )
        )
    return scenarios


def _dated(action: Action, on: dt.date) -> Action:
    return action.model_copy(update={"on": on})


async def load_demo(
    database: Database, catalog: Catalog, timezone: str = "Europe/Amsterdam"
) -> DemoSummary:
    """Fill an empty database with demo data; does nothing when it is already there."""
    summary = DemoSummary()
    async with database.session() as session:
        if await session.get(Agency, "toeslagen") is not None:
            summary.already_loaded = True
            return summary
        for code, name in AGENCIES.items():
            await create_agency(session, code=code, name=name, opening_hours=WEEKDAYS)
            await add_processing_activity(
                session,
                agency_id=code,
                code=DESK_PURPOSE[0],
                purpose=DESK_PURPOSE[1],
                legal_ground=DESK_PURPOSE[2],
            )
            team = await create_team(session, agency_id=code, name="Klantcontact")
            _, key = await issue_key(session, agency_id=code, name="demo back office")
            summary.keys.append((code, key))
            for agency_id, email, display_name, role in STAFF:
                if agency_id == code:
                    staff, secret = await create_staff(
                        session,
                        agency_id=code,
                        email=email,
                        display_name=display_name,
                        role=role,
                        password=DEMO_PASSWORD,
                        totp_secret=demo_totp_secret(email),
                    )
                    await add_to_team(session, team_id=team.id or 0, staff=staff)
                    summary.staff.append((email, display_name, code, secret))
        for (agency_id, code), (purpose, ground) in ACTIVITIES.items():
            await add_processing_activity(
                session, agency_id=agency_id, code=code, purpose=purpose, legal_ground=ground
            )
        for agency_id in AGENCIES:
            code, purpose, ground = QUESTIONS
            await add_processing_activity(
                session, agency_id=agency_id, code=code, purpose=purpose, legal_ground=ground
            )
        bsns = iter(demo_bsns())
        people: list[Party] = []
        for name, email, phone, lang, needs in CITIZENS:
            party = Party(
                kind="person",
                bsn=next(bsns),
                name=name,
                preferred_language=lang,
                needs=needs,
                preferred_channel="email",
                date_of_birth=dt.date(1970 + len(people) * 7, 3 + len(people), 14),
                postal_address=f"Oudegracht {101 + len(people) * 2}\n3511 AB Utrecht",
            )
            session.add(party)
            await session.flush()
            await add_address(session, party_id=party.id, kind="email", value=email, verified=True)
            await add_address(session, party_id=party.id, kind="phone", value=phone, verified=True)
            people.append(party)
            summary.citizens.append((name, email))
        business = Party(kind="business", kvk_number=BUSINESS[1], name=BUSINESS[0])
        session.add(business)
        await session.flush()
        await add_address(
            session, party_id=business.id, kind="email", value=BUSINESS[2], verified=True
        )
        summary.citizens.append((BUSINESS[0], BUSINESS[2]))
        jan, maria, kees, petra = people
        session.add(
            Mandate(
                representative_id=petra.id,
                party_id=kees.id,
                all_journeys=False,
                journeys=["schuldhulp", "huurtoeslag"],
                valid_until=utcnow() + dt.timedelta(days=365),
            )
        )
        owners = {
            agency: (
                await session.exec(select(StaffMember).where(StaffMember.agency_id == agency))
            ).first()
            for agency in AGENCIES
        }
        today = local_today(timezone)
        numbers = count()
        for definition in catalog.all():
            holder_cycle = [business] if definition.id == "kvk-inschrijving" else [jan, maria, kees]
            if definition.id == "schuldhulp":
                holder_cycle = [kees, jan]
            agency_id = "gemeente-utrecht" if definition.agency == ANY_AGENCY else definition.agency
            owner = owners.get(agency_id)
            actor = (
                Actor(
                    kind="staff",
                    id=str(owner.id),
                    name=owner.display_name,
                    agency_id=agency_id,
                )
                if owner
                else Actor.system()
            )
            for index, (label, actions, days_ago) in enumerate(demo_scenarios(definition)):
                party = holder_cycle[index % len(holder_cycle)]
                started = today - dt.timedelta(days=days_ago)
                case = await open_case(
                    session,
                    catalog=catalog,
                    journey_id=definition.id,
                    party=party,
                    actor=actor,
                    channel="portal",
                    timezone=timezone,
                    today=started,
                )
                step = max(1, days_ago // (len(actions) + 1))
                for number, action in enumerate(actions, start=1):
                    on = min(today, started + dt.timedelta(days=step * number))
                    await act_on_case(
                        session,
                        catalog=catalog,
                        case=case,
                        action=_dated(action, on),
                        actor=actor,
                        timezone=timezone,
                    )
                if owner and label != "stage:" + definition.initial_stage.id:
                    case.owner_id = owner.id
                session.add(case)
                next(numbers)
        summary.cases = next(numbers)
        await _demo_notices(session, consenting=[jan, maria], refusing=[kees])
        await _demo_contacts(session, timezone)
        await _demo_console(session, jan=jan, maria=maria)
        summary.staff.sort()
        return summary


# A topic Dienst Toeslagen may write to citizens about unasked, and the notice for it: try
# `hub notices push examples/notices-demo.csv --agency toeslagen` on the demo data.
DEMO_TOPIC = (
    "rechten",
    {"nl": "Toeslagen waar u mogelijk recht op heeft", "en": "Allowances you may be entitled to"},
)
DEMO_TEMPLATES = {
    ("portal", "nl"): (
        "U heeft mogelijk recht op {{ toeslag }}",
        "Beste {{ party_name }},\n\nUit onze gegevens blijkt dat u mogelijk recht heeft op "
        "{{ toeslag }} vanaf {{ vanaf }}. Vraag het aan voor {{ uiterlijk }}.\n\n{{ agency_name }}",
    ),
    ("portal", "en"): (
        "You may be entitled to {{ toeslag }}",
        "Dear {{ party_name }},\n\nOur records show you may be entitled to {{ toeslag }} "
        "from {{ vanaf }}. Apply before {{ uiterlijk }}.\n\n{{ agency_name }}",
    ),
    ("sms", "nl"): (
        "",
        "{{ agency_name }}: u heeft mogelijk recht op {{ toeslag }}. Vraag het aan voor "
        "{{ uiterlijk }}.",
    ),
    ("sms", "en"): (
        "",
        "{{ agency_name }}: you may be entitled to {{ toeslag }}. Apply before {{ uiterlijk }}.",
    ),
}


async def _demo_notices(
    session: AsyncSession, *, consenting: list[Party], refusing: list[Party]
) -> None:
    from hub.notices.consent import record_consent, register_topic
    from hub.notices.service import save_template

    code, title = DEMO_TOPIC
    topic = await register_topic(
        session, agency_id="toeslagen", code=code, title=title, activity_code="toeslagen-aanvraag"
    )
    for (channel, language), (subject, body) in DEMO_TEMPLATES.items():
        await save_template(
            session,
            agency_id="toeslagen",
            code="huurtoeslag-kans",
            channel=channel,
            language=language,
            subject=subject,
            body=body,
        )
    for party, granted in [(p, True) for p in consenting] + [(p, False) for p in refusing]:
        await record_consent(
            session,
            party_id=party.id,
            topic=topic,
            granted=granted,
            recorded_by_kind="citizen",
            recorded_by_id=str(party.id),
            source="portal",
        )


# What citizen and staff wrote on the demo cases, in turns (the insights page counts these
# contacts, channel switches and first answers): (channel, from the citizen?) in order.
DEMO_CONTACTS: list[list[tuple[str, bool]]] = [
    [("webchat", True), ("webchat", False)],
    [("email", True), ("email", False), ("sms", True), ("sms", False)],
    [("counter", True), ("counter", False)],
    [("sms", True), ("email", False), ("email", True), ("webchat", True), ("webchat", False)],
    [],
]
IDENTIFIED_BY = {
    "webchat": "session",
    "email": "reply_token",
    "sms": "verified_phone",
    "counter": "id_document",
}


async def _demo_contacts(session: AsyncSession, timezone: str) -> None:
    """Messages on the demo cases from the day after each started, every one answered by
    staff in the end (so that the console's queue stays as ``_demo_console`` leaves it).
    Open rent allowance cases are left alone: Jan's mail on his waits for an answer."""
    cases = (await session.exec(select(Case).order_by(Case.reference))).all()
    staff = {s.agency_id: s for s in (await session.exec(select(StaffMember))).all()}
    now = utcnow()
    for index, case in enumerate(cases):
        turns = DEMO_CONTACTS[index % len(DEMO_CONTACTS)]
        if (
            case.journey_id == "huurtoeslag" and case.status == "open"
        ) or case.agency_id not in staff:
            continue
        party = await session.get(Party, case.party_id)
        member = staff[case.agency_id]
        started = dt.date.fromisoformat(case.state["started_on"])
        first = start_of_local_day(started + dt.timedelta(days=1), timezone)
        for number, (channel, from_citizen) in enumerate(turns):
            moment = first + dt.timedelta(hours=9, minutes=(25 + 50 * (index % 7)) * number)
            moment = min(moment, now - dt.timedelta(minutes=len(turns) - number))
            message = await post_message(
                session,
                case=case,
                channel=channel,
                direction="inbound" if from_citizen else "outbound",
                author=Actor(kind="citizen", id=str(case.party_id), name=party.name)
                if from_citizen and party
                else Actor(kind="staff", id=str(member.id), name=member.display_name),
                body="Hoe staat het met mijn zaak?" if from_citizen else "We kijken ernaar.",
                identified_by=IDENTIFIED_BY[channel] if from_citizen else None,
            )
            message.created_at = moment
            session.add(message)


async def _demo_console(session: AsyncSession, *, jan: Party, maria: Party) -> None:
    """Something for the staff console to show: a mail from Jan on his rent allowance case
    that has waited past the service norm, and in the review queue a mail from an address
    nobody knows and a text from Maria that fits more than one of her cases."""
    case = (
        await session.exec(
            select(Case).where(
                Case.party_id == jan.id, Case.journey_id == "huurtoeslag", Case.status == "open"
            )
        )
    ).first()
    if case is not None:
        mail = await post_message(
            session,
            case=case,
            channel="email",
            direction="inbound",
            author=Actor(kind="citizen", id=str(jan.id), name=jan.name),
            subject="Vraag over mijn huurtoeslag",
            body="Goedemiddag, mijn huur gaat omhoog. Moet ik dat doorgeven?",
            identified_by="reply_token",
        )
        mail.created_at = utcnow() - dt.timedelta(days=2)
        session.add(mail)
    await add_review_item(
        session,
        channel="email",
        sender="onbekend@example.nl",
        subject="Vraag over mijn aanvraag",
        body="Ik heb vorige week iets aangevraagd. Wanneer hoor ik meer?",
        reason="no_token",
    )
    await add_review_item(
        session,
        channel="sms",
        sender="+31612345002",
        body="When will I hear from you?",
        reason="several_open_cases",
        party_id=maria.id,
    )


async def demo_case_count(database: Database) -> int:
    async with database.session() as session:
        return len((await session.exec(select(Case.id))).all())
