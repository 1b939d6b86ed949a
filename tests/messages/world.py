"""The people and cases the thread, document and desk tests share: two agencies with a
member of staff each, a citizen with every kind of address, one with none, and a
representative of the first."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from hub.db import Database
from hub.models import Case, Party, StaffMember
from tests.builders import make_agency, make_case, make_mandate, make_party, token_for

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
        question = await make_case(session, anna, journey="vraag", agency_id="toeslagen")
        allowance = await make_case(session, anna, journey="huurtoeslag")
        benefit = await make_case(session, anna, journey="ww-uitkering", agency_id="uwv")
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
