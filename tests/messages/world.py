"""The people and cases the thread, document and desk tests share: two agencies with a
member of staff each, a citizen with every kind of address, one with none, and a
representative of the first."""

from __future__ import annotations

import datetime as dt
import functools
from dataclasses import dataclass

from sqlmodel.ext.asyncio.session import AsyncSession

from hub.cases.service import open_case
from hub.db import Database
from hub.events.service import Actor
from hub.models import Case, Party, StaffMember
from journeys.catalog import Catalog, load_catalog
from tests.builders import make_agency, make_mandate, make_party, token_for

DESK_PURPOSE = "balie-zoeken"


@dataclass
class World:
    anna: Party
    bram: Party
    rita: Party
    sanne: StaffMember
    lotte: StaffMember
    question: Case  # Anna's question at toeslagen
    allowance: Case  # Anna's huurtoeslag case at toeslagen
    benefit: Case  # Anna's WW case at uwv
    anna_token: str
    bram_token: str
    rita_token: str
    sanne_token: str
    lotte_token: str


@functools.cache
def catalog() -> Catalog:
    """The journey catalogue, read once: parsing it for every case would slow every test."""
    return load_catalog()


async def open_for(
    session: AsyncSession, party: Party, journey: str, *, agency_id: str | None = None
) -> Case:
    return await open_case(
        session,
        catalog=catalog(),
        journey_id=journey,
        party=party,
        actor=Actor.system(),
        agency_id=agency_id,
    )


async def make_world(database: Database) -> World:
    async with database.session() as session:
        await make_agency(
            session,
            "toeslagen",
            activities=("toeslagen-aanvraag", "vragen-beantwoorden", DESK_PURPOSE),
        )
        await make_agency(session, "uwv", activities=("uwv-ww", DESK_PURPOSE))
        # Staff log in by token here: no password hash to compute, which keeps setup quick.
        sanne = StaffMember(
            agency_id="toeslagen", email="sanne@toeslagen.test", display_name="Sanne de Wit"
        )
        lotte = StaffMember(agency_id="uwv", email="lotte@uwv.test", display_name="Lotte Visser")
        session.add_all([sanne, lotte])
        anna = await make_party(
            session,
            "Anna de Boer",
            email="anna@example.nl",
            phone="+31612345001",
            postal_address="Lange Gracht 1\n1234 AB Utrecht",
        )
        anna.date_of_birth = dt.date(1980, 5, 17)
        anna.needs = ["plain_language"]
        session.add(anna)
        bram = await make_party(session, "Bram Smit")
        rita = await make_party(session, "Rita Jansen")
        await make_mandate(session, representative=rita, party=anna)
        question = await open_for(session, anna, "vraag", agency_id="toeslagen")
        allowance = await open_for(session, anna, "huurtoeslag")
        benefit = await open_for(session, anna, "ww-uitkering")
    return World(
        anna=anna,
        bram=bram,
        rita=rita,
        sanne=sanne,
        lotte=lotte,
        question=question,
        allowance=allowance,
        benefit=benefit,
        anna_token=await token_for(database, "citizen", anna.id),
        bram_token=await token_for(database, "citizen", bram.id),
        rita_token=await token_for(database, "citizen", rita.id),
        sanne_token=await token_for(database, "staff", sanne.id),
        lotte_token=await token_for(database, "staff", lotte.id),
    )
