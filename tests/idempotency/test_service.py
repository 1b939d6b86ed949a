"""Idempotency keys as stored, on SQLite and PostgreSQL: claiming, storing, releasing, expiry
and the purge; and which header values are keys."""

from __future__ import annotations

import datetime as dt

import pytest
from sqlmodel import select

from hub.db import Database, utcnow
from hub.idempotency.service import (
    Answer,
    KeyRefused,
    claim,
    parse_key,
    purge_expired,
    release,
    store_answer,
    stored_answer,
)
from hub.models import IdempotencyKey
from tests.builders import make_agency

DAY = dt.timedelta(hours=24)


@pytest.mark.parametrize(
    ("raw", "key"),
    [("abc", "abc"), ('"abc"', "abc"), ('  "a\\"b"  ', 'a"b'), ("k" * 255, "k" * 255)],
)
def test_header_values_that_are_keys(raw: str, key: str) -> None:
    assert parse_key(raw) == key


@pytest.mark.parametrize("raw", ["", "  ", '""', "k" * 256, "tab\there", "caf\u00e9"])
def test_header_values_that_are_not(raw: str) -> None:
    with pytest.raises(KeyRefused):
        parse_key(raw)


async def test_a_claim_holds_until_its_answer_is_stored_or_released(database: Database) -> None:
    async with database.session() as session:
        await make_agency(session, "toeslagen")
    assert (
        await claim(database, agency_id="toeslagen", key="k", lifetime=DAY)
    ).outcome == "claimed"
    assert (
        await claim(database, agency_id="toeslagen", key="k", lifetime=DAY)
    ).outcome == "running"
    await release(database, agency_id="toeslagen", key="k")
    assert (
        await claim(database, agency_id="toeslagen", key="k", lifetime=DAY)
    ).outcome == "claimed"
    answer = Answer(201, [("content-type", "image/png"), ("x-other", "no")], b"\x89PNG\xff")
    await store_answer(database, agency_id="toeslagen", key="k", request_hash="h", answer=answer)
    done = await claim(database, agency_id="toeslagen", key="k", lifetime=DAY)
    assert done.outcome == "done" and done.row is not None
    assert done.row.request_hash == "h"
    assert stored_answer(done.row) == Answer(201, [("content-type", "image/png")], b"\x89PNG\xff")
    # A stored answer is never released by a late release.
    await release(database, agency_id="toeslagen", key="k")
    assert (await claim(database, agency_id="toeslagen", key="k", lifetime=DAY)).outcome == "done"


async def test_purge_deletes_only_expired_keys(database: Database) -> None:
    async with database.session() as session:
        await make_agency(session, "toeslagen")
        for key, age in (("old", 25), ("young", 23)):
            session.add(
                IdempotencyKey(
                    agency_id="toeslagen",
                    key=key,
                    request_hash="h",
                    created_at=utcnow() - dt.timedelta(hours=age),
                )
            )
    async with database.session() as session:
        assert await purge_expired(session, lifetime=DAY) == 1
    async with database.session() as session:
        assert (await session.exec(select(IdempotencyKey.key))).all() == ["young"]
