"""The auth endpoints over HTTP, and the viewer every authenticated request gets."""

from __future__ import annotations

import asyncio
import datetime as dt
import re

import httpx
import pyotp
from fastapi import FastAPI
from sqlmodel import col, select

from hub.access.service import Viewer
from hub.auth.dependencies import CurrentAgency, CurrentCitizen, CurrentStaff, CurrentStaffOrAgency
from hub.db import Database, utcnow
from hub.models import LoginCode, OutboxItem, StaffMember
from tests.builders import (
    STAFF_PASSWORD,
    bearer,
    make_agency,
    make_key,
    make_mandate,
    make_party,
    make_staff,
    token_for,
)

CODE_SENT = {"detail": "If this address is known and verified, a code has been sent."}


async def code_sent_to(database: Database, recipient: str) -> str:
    """The last login code mailed to ``recipient``. The code is made after the answer (so
    known and unknown addresses take as long), so over a real server it may take a moment."""
    for _ in range(500):
        async with database.session() as session:
            items = (
                await session.exec(
                    select(OutboxItem)
                    .where(OutboxItem.recipient == recipient, OutboxItem.template == "login_code")
                    .order_by(col(OutboxItem.created_at).desc())
                )
            ).all()
        if items:
            break
        await asyncio.sleep(0.02)
    assert items, f"no login code was sent to {recipient}"
    match = re.search(r"\b(\d{6})\b", items[0].body)
    assert match is not None
    return match.group(1)


async def outbox_count(database: Database) -> int:
    async with database.session() as session:
        return len((await session.exec(select(OutboxItem))).all())


def other(code: str) -> str:
    return f"{(int(code) + 1) % 1_000_000:06d}"


async def test_citizen_logs_in_with_a_code(client: httpx.AsyncClient, database: Database) -> None:
    async with database.session() as session:
        party = await make_party(session, "Jan Jansen", email="jan@example.nl")

    asked = await client.post("/api/auth/citizen/code", json={"address": "Jan@Example.nl"})
    assert asked.status_code == 202 and asked.json() == CODE_SENT
    code = await code_sent_to(database, "jan@example.nl")

    login = await client.post(
        "/api/auth/citizen/session", json={"address": "jan@example.nl", "code": code}
    )

    assert login.status_code == 200
    body = login.json()
    assert set(body) == {"token", "expires_at"}
    cookie = login.headers["set-cookie"]
    assert cookie.startswith(f"hub_session={body['token']};")
    assert "HttpOnly" in cookie and "SameSite=lax" in cookie and "Secure" not in cookie
    me = await client.get("/api/me", headers=bearer(body["token"]))
    assert me.status_code == 200
    assert me.json()["kind"] == "citizen" and me.json()["party"]["id"] == str(party.id)
    # The cookie alone also works (the client kept it).
    assert (await client.get("/api/me")).json()["name"] == "Jan Jansen"


async def test_unknown_address_gets_the_same_answer_and_no_code(
    client: httpx.AsyncClient, database: Database
) -> None:
    asked = await client.post("/api/auth/citizen/code", json={"address": "nobody@example.nl"})

    assert asked.status_code == 202 and asked.json() == CODE_SENT
    assert await outbox_count(database) == 0


async def test_wrong_codes_are_counted_across_requests(
    client: httpx.AsyncClient, database: Database
) -> None:
    async with database.session() as session:
        await make_party(session, email="jan@example.nl")
    await client.post("/api/auth/citizen/code", json={"address": "jan@example.nl"})
    code = await code_sent_to(database, "jan@example.nl")

    for _ in range(5):
        wrong = await client.post(
            "/api/auth/citizen/session", json={"address": "jan@example.nl", "code": other(code)}
        )
        assert wrong.status_code == 401
        assert wrong.headers["content-type"] == "application/problem+json"
    right_too_late = await client.post(
        "/api/auth/citizen/session", json={"address": "jan@example.nl", "code": code}
    )

    assert right_too_late.status_code == 401
    assert right_too_late.json()["detail"] == wrong.json()["detail"]
    async with database.session() as session:
        [row] = (await session.exec(select(LoginCode))).all()
    assert row.attempts == 5 and row.used_at is None


async def test_expired_and_reused_codes_are_refused(
    client: httpx.AsyncClient, database: Database
) -> None:
    async with database.session() as session:
        await make_party(session, email="jan@example.nl")
    await client.post("/api/auth/citizen/code", json={"address": "jan@example.nl"})
    code = await code_sent_to(database, "jan@example.nl")
    payload = {"address": "jan@example.nl", "code": code}
    assert (await client.post("/api/auth/citizen/session", json=payload)).status_code == 200
    assert (await client.post("/api/auth/citizen/session", json=payload)).status_code == 401

    await client.post("/api/auth/citizen/code", json={"address": "jan@example.nl"})
    fresh = await code_sent_to(database, "jan@example.nl")
    async with database.session() as session:
        for row in (await session.exec(select(LoginCode))).all():
            row.expires_at = utcnow() - dt.timedelta(seconds=1)
            session.add(row)
    expired = await client.post(
        "/api/auth/citizen/session", json={"address": "jan@example.nl", "code": fresh}
    )
    assert expired.status_code == 401


async def test_too_many_code_requests_get_429_with_retry_after(
    client: httpx.AsyncClient, database: Database
) -> None:
    async with database.session() as session:
        await make_party(session, phone="+31612345678")
    for _ in range(5):
        asked = await client.post("/api/auth/citizen/code", json={"address": "+31612345678"})
        assert asked.status_code == 202

    refused = await client.post("/api/auth/citizen/code", json={"address": "+31612345678"})

    assert refused.status_code == 429
    assert refused.headers["content-type"] == "application/problem+json"
    assert 0 < int(refused.headers["retry-after"]) <= 900
    assert await outbox_count(database) == 5


async def test_a_malformed_address_is_invalid_input(client: httpx.AsyncClient) -> None:
    response = await client.post("/api/auth/citizen/code", json={"address": "not an address"})

    assert response.status_code == 422


async def staff_member(database: Database, *, totp: bool = True) -> StaffMember:
    async with database.session() as session:
        await make_agency(session, "toeslagen")
        return await make_staff(session, "toeslagen", email="fatima@toeslagen.example", totp=totp)


async def test_staff_login_needs_the_right_totp(
    client: httpx.AsyncClient, database: Database
) -> None:
    staff = await staff_member(database)
    assert staff.totp_secret is not None
    code = pyotp.TOTP(staff.totp_secret).now()
    login = {"email": staff.email, "password": STAFF_PASSWORD}

    wrong = await client.post(
        "/api/auth/staff/session", json={**login, "totp": f"{(int(code) + 500_000) % 10**6:06d}"}
    )
    right = await client.post("/api/auth/staff/session", json={**login, "totp": code})

    assert wrong.status_code == 401
    assert wrong.json()["detail"] == "Email, password or code is wrong."
    assert wrong.headers["www-authenticate"] == "Bearer"
    assert right.status_code == 200
    me = (await client.get("/api/me", headers=bearer(right.json()["token"]))).json()
    assert me["kind"] == "staff" and me["role"] == "agent" and me["agency"]["id"] == "toeslagen"


async def test_staff_without_totp_cannot_log_in(
    client: httpx.AsyncClient, database: Database
) -> None:
    staff = await staff_member(database, totp=False)

    response = await client.post(
        "/api/auth/staff/session",
        json={"email": staff.email, "password": STAFF_PASSWORD, "totp": "123456"},
    )

    assert response.status_code == 401


async def test_logout_revokes_the_session(client: httpx.AsyncClient, database: Database) -> None:
    async with database.session() as session:
        party = await make_party(session)
    token = await token_for(database, "citizen", party.id)
    assert (await client.get("/api/me", headers=bearer(token))).status_code == 200

    out = await client.delete("/api/auth/session", headers=bearer(token))
    again = await client.delete("/api/auth/session", headers=bearer(token))

    assert out.status_code == 204 and again.status_code == 204
    assert 'hub_session=""' in out.headers["set-cookie"]
    after = await client.get("/api/me", headers=bearer(token))
    assert after.status_code == 401 and after.headers["www-authenticate"] == "Bearer"


async def test_a_deactivated_staff_member_loses_access(
    client: httpx.AsyncClient, database: Database
) -> None:
    staff = await staff_member(database)
    token = await token_for(database, "staff", staff.id)
    async with database.session() as session:
        row = await session.get(StaffMember, staff.id)
        assert row is not None
        row.active = False
        session.add(row)

    assert (await client.get("/api/me", headers=bearer(token))).status_code == 401


async def test_me_for_a_citizen_lists_whom_they_represent(
    client: httpx.AsyncClient, database: Database
) -> None:
    async with database.session() as session:
        daughter = await make_party(session, "Eva de Boer")
        mother = await make_party(session, "Truus de Boer")
        await make_mandate(session, representative=daughter, party=mother, journeys=["zorgtoeslag"])
    token = await token_for(database, "citizen", daughter.id)

    me = (await client.get("/api/me", headers=bearer(token))).json()

    assert me["kind"] == "citizen" and me["name"] == "Eva de Boer"
    [represented] = me["represents"]
    assert represented["party"]["name"] == "Truus de Boer"
    assert represented["all_journeys"] is False and represented["journeys"] == ["zorgtoeslag"]


async def test_me_for_an_agency_system_by_either_header(
    client: httpx.AsyncClient, database: Database
) -> None:
    async with database.session() as session:
        agency = await make_agency(session, "toeslagen")
        key, raw = await make_key(session, "toeslagen", name="back office")

    by_bearer = await client.get("/api/me", headers=bearer(raw))
    by_header = await client.get("/api/me", headers={"X-API-Key": raw})

    assert by_bearer.status_code == 200 and by_header.json() == by_bearer.json()
    me = by_bearer.json()
    assert me["kind"] == "agency" and me["id"] == str(key.id)
    assert me["name"] == f"{agency.name} (back office)" and me["agency"]["id"] == "toeslagen"


async def test_revoked_or_unknown_credentials_are_401(
    client: httpx.AsyncClient, database: Database
) -> None:
    async with database.session() as session:
        await make_agency(session, "toeslagen")
        _, raw = await make_key(session, "toeslagen")
    rotated = await client.get("/api/me", headers={"X-API-Key": raw[:-2] + "xx"})
    nothing = await client.get("/api/me")
    basic = await client.get("/api/me", headers={"Authorization": "Basic dXNlcjpwdw=="})
    in_query = await client.get("/api/me", params={"token": raw, "api_key": raw})

    for response in (rotated, nothing, basic, in_query):
        assert response.status_code == 401
        assert response.headers["content-type"] == "application/problem+json"


async def test_each_alias_lets_only_its_kind_in(
    app: FastAPI, client: httpx.AsyncClient, database: Database
) -> None:
    async def who(viewer: Viewer) -> dict[str, str | None]:
        return {"kind": viewer.kind, "request_id": viewer.request_id}

    async def citizen_only(viewer: CurrentCitizen) -> dict[str, str | None]:
        return await who(viewer)

    async def staff_only(viewer: CurrentStaff) -> dict[str, str | None]:
        return await who(viewer)

    async def agency_only(viewer: CurrentAgency) -> dict[str, str | None]:
        return await who(viewer)

    async def staff_or_agency(viewer: CurrentStaffOrAgency) -> dict[str, str | None]:
        return await who(viewer)

    routes = {
        "citizen": citizen_only,
        "staff": staff_only,
        "agency": agency_only,
        "staff-or-agency": staff_or_agency,
    }
    for name, endpoint in routes.items():
        app.add_api_route(f"/test/{name}", endpoint)
    async with database.session() as session:
        await make_agency(session, "toeslagen")
        party = await make_party(session)
        staff = await make_staff(session, "toeslagen")
        _, raw = await make_key(session, "toeslagen")
    credentials = {
        "citizen": bearer(await token_for(database, "citizen", party.id)),
        "staff": bearer(await token_for(database, "staff", staff.id)),
        "agency": {"X-API-Key": raw},
    }
    allowed = {
        "citizen": {"citizen"},
        "staff": {"staff"},
        "agency": {"agency"},
        "staff-or-agency": {"staff", "agency"},
    }

    for route, kinds in allowed.items():
        for kind, headers in credentials.items():
            response = await client.get(
                f"/test/{route}", headers={**headers, "X-Request-ID": "req-12345678"}
            )
            if kind in kinds:
                assert response.json() == {"kind": kind, "request_id": "req-12345678"}
            else:
                assert response.status_code == 403, (route, kind)
