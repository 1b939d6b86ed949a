"""Logins and one-time codes are limited per address tried and per client, on SQLite and
PostgreSQL, in memory and through Redis: a lockout after the limit, 429 with Retry-After,
the same answers in the same order for an address the hub knows and one it does not, and
the client taken from X-Forwarded-For or Forwarded only when a trusted proxy sent it."""

from __future__ import annotations

import statistics
import time
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import pyotp
import pytest
from asgi_lifespan import LifespanManager
from fastapi import FastAPI
from pydantic import SecretStr
from sqlmodel import select
from starlette.types import Scope

from hub.app import create_app
from hub.config import Settings
from hub.db import Database
from hub.models import OutboxItem
from hub.ratelimit.clients import client_address, trusted_networks
from hub.ratelimit.logins import login_limits_for
from tests.builders import STAFF_PASSWORD, make_agency, make_party, make_staff
from tests.conftest import REDIS_UP, REDIS_URL
from tests.ratelimit.test_service import Clock
from tests.web.test_pages import csrf_of

TRIES = 3
KNOWN_EMAIL = "fatima@toeslagen.example"
UNKNOWN_EMAIL = "nobody@toeslagen.example"
CITIZEN = "jan@example.nl"
STRANGER = "piet@example.nl"


def hub_settings(tmp_path: Path, **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "environment": "test",
        "data_dir": tmp_path,
        "run_worker": False,
        "login_tries_per_address": TRIES,
        "login_tries_per_client": 100,
    }
    return Settings(**(values | overrides))


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return hub_settings(tmp_path)


@asynccontextmanager
async def hub(
    settings: Settings, database: Database, *, clock: Clock | None = None
) -> AsyncIterator[FastAPI]:
    application = create_app(settings, database=database)
    async with LifespanManager(application):
        if clock is not None:
            await application.state.login_limits.close()
            application.state.login_limits = login_limits_for(settings, clock=clock)
        yield application


@asynccontextmanager
async def connected(
    application: FastAPI, peer: str = "192.0.2.10"
) -> AsyncIterator[httpx.AsyncClient]:
    """A client whose connection to the hub comes from ``peer``."""
    transport = httpx.ASGITransport(app=application, client=(peer, 40000))
    async with httpx.AsyncClient(transport=transport, base_url="http://hub.test") as client:
        yield client


async def staff_and_citizen(database: Database) -> str:
    """A member of staff (KNOWN_EMAIL) and a citizen (CITIZEN); the staff's TOTP secret."""
    async with database.session() as session:
        await make_agency(session)
        staff = await make_staff(session, "toeslagen", email=KNOWN_EMAIL)
        await make_party(session, email=CITIZEN)
    assert staff.totp_secret is not None
    return staff.totp_secret


def staff_try(email: str, password: str = "wrong password", totp: str = "000000") -> Any:  # noqa: S107
    return {"email": email, "password": password, "totp": totp}


def answer(response: httpx.Response) -> tuple[int, str, str | None]:
    """What a caller learns: the status, the body, and when to retry."""
    return response.status_code, response.text, response.headers.get("retry-after")


async def test_staff_are_locked_out_after_the_tries_even_with_the_right_password(
    client: httpx.AsyncClient, database: Database
) -> None:
    secret = await staff_and_citizen(database)
    for _ in range(TRIES):
        wrong = await client.post("/api/auth/staff/session", json=staff_try(KNOWN_EMAIL))
        assert wrong.status_code == 401
    right = staff_try(KNOWN_EMAIL, STAFF_PASSWORD, pyotp.TOTP(secret).now())

    refused = await client.post("/api/auth/staff/session", json=right)

    assert refused.status_code == 429
    assert refused.headers["content-type"] == "application/problem+json"
    assert 0 < int(refused.headers["retry-after"]) <= 15 * 60
    assert "token" not in refused.json()
    # The address spelled otherwise is the same address.
    shouted = await client.post(
        "/api/auth/staff/session", json={**right, "email": " FATIMA@toeslagen.EXAMPLE"}
    )
    assert shouted.status_code == 429


async def test_a_known_and_an_unknown_staff_address_get_the_same_answers_in_the_same_time(
    settings: Settings, database: Database
) -> None:
    await staff_and_citizen(database)
    timings: dict[str, list[float]] = {KNOWN_EMAIL: [], UNKNOWN_EMAIL: []}
    answers: dict[str, list[tuple[int, str, str | None]]] = {KNOWN_EMAIL: [], UNKNOWN_EMAIL: []}
    async with (
        hub(settings, database, clock=Clock()) as application,
        connected(application) as client,
    ):
        for _ in range(TRIES + 2):
            for email in (KNOWN_EMAIL, UNKNOWN_EMAIL):  # interleaved: load on the machine hits both
                started = time.perf_counter()
                response = await client.post("/api/auth/staff/session", json=staff_try(email))
                timings[email].append(time.perf_counter() - started)
                answers[email].append(answer(response))

    assert [status for status, _, _ in answers[KNOWN_EMAIL]] == [401] * TRIES + [429, 429]
    assert answers[KNOWN_EMAIL] == answers[UNKNOWN_EMAIL]
    # Refused tries check a password hash either way (argon2, tens of milliseconds).
    known = statistics.median(timings[KNOWN_EMAIL][:TRIES])
    unknown = statistics.median(timings[UNKNOWN_EMAIL][:TRIES])
    assert 0.4 < unknown / known < 2.5, (known, unknown)


async def test_code_requests_answer_alike_for_a_known_and_an_unknown_address(
    settings: Settings, database: Database
) -> None:
    await staff_and_citizen(database)
    clock = Clock()
    async with (
        hub(settings, database, clock=clock) as application,
        connected(application) as client,
    ):
        answers: dict[str, list[tuple[int, str, str | None]]] = {CITIZEN: [], STRANGER: []}
        for _ in range(6):
            for address in (CITIZEN, STRANGER):
                response = await client.post("/api/auth/citizen/code", json={"address": address})
                answers[address].append(answer(response))
        assert [status for status, _, _ in answers[CITIZEN]] == [202] * 5 + [429]
        assert answers[CITIZEN] == answers[STRANGER]
        # Three minutes on, the bucket has a token again, but the known address has had its
        # five codes this quarter: no sixth code, and nothing in the answer says so.
        clock.now += 181
        again = {
            address: answer(await client.post("/api/auth/citizen/code", json={"address": address}))
            for address in (CITIZEN, STRANGER)
        }
    assert again[CITIZEN] == again[STRANGER]
    assert again[CITIZEN][0] == 202
    async with database.session() as session:
        assert len((await session.exec(select(OutboxItem))).all()) == 5


async def test_typed_codes_are_limited_per_address(
    client: httpx.AsyncClient, database: Database
) -> None:
    await staff_and_citizen(database)
    statuses = []
    for address in (CITIZEN, STRANGER):
        for _ in range(TRIES + 1):
            tried = {"address": address, "code": "123456"}
            statuses.append(
                (await client.post("/api/auth/citizen/session", json=tried)).status_code
            )
    assert statuses == ([401] * TRIES + [429]) * 2


async def test_one_client_is_limited_over_every_address_and_another_is_not(
    tmp_path: Path, database: Database
) -> None:
    await staff_and_citizen(database)
    settings = hub_settings(tmp_path, login_tries_per_client=4)
    async with (
        hub(settings, database) as application,
        connected(application, "198.51.100.1") as client,
    ):
        for number in range(4):
            tried = await client.post("/api/auth/staff/session", json=staff_try(f"s{number}@x.nl"))
            assert tried.status_code == 401
        assert (
            await client.post("/api/auth/staff/session", json=staff_try("s9@x.nl"))
        ).status_code == 429
        asked = await client.post("/api/auth/citizen/code", json={"address": CITIZEN})
        assert asked.status_code == 429
        # Naming another client in a header does not help: no proxy is trusted.
        spoofed = await client.post(
            "/api/auth/staff/session",
            json=staff_try("s9@x.nl"),
            headers={"X-Forwarded-For": "203.0.113.99", "Forwarded": "for=203.0.113.98"},
        )
        assert spoofed.status_code == 429
        async with connected(application, "198.51.100.2") as other:
            tried = await other.post("/api/auth/staff/session", json=staff_try("s9@x.nl"))
            assert tried.status_code == 401


async def test_behind_a_trusted_proxy_the_forwarded_client_is_counted(
    tmp_path: Path, database: Database
) -> None:
    await staff_and_citizen(database)
    settings = hub_settings(tmp_path, login_tries_per_client=2, trusted_proxies=["10.0.0.0/8"])

    async def status(client: httpx.AsyncClient, headers: dict[str, str]) -> int:
        # Another address each time: only the client's limit is tried here.
        email = f"{uuid.uuid4().hex[:8]}@x.nl"
        tried = await client.post("/api/auth/staff/session", json=staff_try(email), headers=headers)
        return tried.status_code

    async with (
        hub(settings, database) as application,
        connected(application, "10.0.0.2") as proxied,
    ):
        first = {"X-Forwarded-For": "203.0.113.1"}
        assert [await status(proxied, first) for _ in range(3)] == [401, 401, 429]
        # Another client behind the same proxy has tries of its own.
        assert await status(proxied, {"X-Forwarded-For": "203.0.113.2"}) == 401
        # What the client wrote itself stays left of what the proxy added: it is not read.
        assert await status(proxied, {"X-Forwarded-For": "198.18.0.1, 203.0.113.1"}) == 429
        # The standard header, with a port and quotes, names the client just as well.
        assert await status(proxied, {"Forwarded": 'for="203.0.113.1:4711";proto=https'}) == 429
        assert await status(proxied, {"Forwarded": "for=203.0.113.3"}) == 401


async def test_the_login_pages_are_limited_too(
    client: httpx.AsyncClient, database: Database
) -> None:
    await staff_and_citizen(database)
    page = await client.get("/console/login")
    form = {"csrf_token": csrf_of(page.text), "email": KNOWN_EMAIL, "password": "x", "code": "1"}
    statuses = [(await client.post("/console/login", data=form)).status_code for _ in range(4)]
    assert statuses == [401] * TRIES + [429]
    # Locked out, the form comes back saying so, with the wait in Retry-After.
    locked = await client.post("/console/login", data=form)
    assert "text/html" in locked.headers["content-type"]
    assert int(locked.headers["retry-after"]) > 0
    assert "Te vaak geprobeerd" in locked.text and 'name="password"' in locked.text

    page = await client.get("/login")
    typed = {"csrf_token": csrf_of(page.text), "address": CITIZEN, "code": "000000"}
    codes = [await client.post("/login/code", data=typed) for _ in range(TRIES + 1)]
    assert [response.status_code for response in codes] == [401] * TRIES + [429]
    assert int(codes[-1].headers["retry-after"]) > 0
    assert "Te vaak geprobeerd" in codes[-1].text and 'name="code"' in codes[-1].text

    page = await client.get("/login")
    asked = [
        await client.post("/login", data={"csrf_token": csrf_of(page.text), "address": STRANGER})
        for _ in range(6)
    ]
    assert [response.status_code for response in asked] == [200] * 5 + [429]
    assert int(asked[-1].headers["retry-after"]) > 0


@pytest.mark.skipif(not REDIS_UP, reason="Redis not reachable")
async def test_two_hubs_sharing_redis_share_the_limits(tmp_path: Path, database: Database) -> None:
    await staff_and_citizen(database)
    # A key of its own: the addresses' buckets are named by keyed hashes, so this run's
    # never meet those of another run sharing the Redis.
    settings = hub_settings(
        tmp_path, redis_url=REDIS_URL, secret_key=SecretStr(uuid.uuid4().hex * 2)
    )
    async with (
        hub(settings, database) as first,
        hub(settings, database) as second,
        connected(first) as one,
        connected(second) as two,
    ):
        statuses = [
            (
                await hub_client.post("/api/auth/staff/session", json=staff_try(KNOWN_EMAIL))
            ).status_code
            for hub_client in (one, two, one, two)
        ]
    assert statuses == [401] * TRIES + [429]


def scope_from(peer: str, headers: list[tuple[str, str]]) -> Scope:
    return {
        "type": "http",
        "client": (peer, 1234),
        "headers": [(name.lower().encode(), value.encode()) for name, value in headers],
    }


@pytest.mark.parametrize(
    ("peer", "headers", "client"),
    [
        ("192.0.2.1", [("X-Forwarded-For", "203.0.113.9")], "192.0.2.1"),
        ("10.1.2.3", [("X-Forwarded-For", "203.0.113.9")], "203.0.113.9"),
        ("10.1.2.3", [("X-Forwarded-For", "1.1.1.1, 203.0.113.9, 10.9.9.9")], "203.0.113.9"),
        ("10.1.2.3", [("X-Forwarded-For", "1.1.1.1"), ("X-Forwarded-For", "10.0.0.7")], "1.1.1.1"),
        ("10.1.2.3", [("X-Forwarded-For", "garbage")], "10.1.2.3"),
        ("10.1.2.3", [], "10.1.2.3"),
        ("10.1.2.3", [("Forwarded", 'for="[2001:db8::7]:80", for=10.0.0.9')], "2001:db8::7"),
        ("10.1.2.3", [("Forwarded", "for=unknown")], "10.1.2.3"),
        ("::1", [("X-Forwarded-For", "203.0.113.9")], "203.0.113.9"),
        ("fd00::5", [("X-Forwarded-For", "203.0.113.9")], "fd00::5"),
    ],
)
def test_the_client_address_trusts_only_the_configured_proxies(
    peer: str, headers: list[tuple[str, str]], client: str
) -> None:
    trusted = trusted_networks(["10.0.0.0/8", "::1"])
    assert client_address(scope_from(peer, headers), trusted) == client
    # With no proxy trusted, the headers are never read.
    assert client_address(scope_from(peer, headers), ()) == str(peer)
