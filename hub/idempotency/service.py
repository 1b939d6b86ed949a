"""Idempotency keys: claim one before a request runs, store its answer after, replay it.

A key is claimed by inserting its row (primary key: agency and key) in a transaction of its
own, committed before the request runs: the unique key is the lock, so of two requests with
one key only one ever runs. The row holds no answer (``status_code`` None) until the request
finished; then :func:`store_answer` fills it in, or :func:`release` deletes it when the
answer was a server error, so that a retry runs again.
"""

from __future__ import annotations

import base64
import datetime as dt
from dataclasses import dataclass
from typing import Literal

from sqlalchemy import delete
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlmodel import col
from sqlmodel.ext.asyncio.session import AsyncSession

from hub.auth.dependencies import authenticate
from hub.db import Database, utcnow
from hub.models import IdempotencyKey

MAX_KEY_LENGTH = 255
# Headers of a stored answer that a replay repeats; the rest (date, request id, length) are
# the replay's own.
REPLAYED_HEADERS = ("content-type", "content-language", "location", "etag", "last-modified")
# Marks a stored body kept as base64 because it was not UTF-8 text.
_BASE64_MARK = "x-hub-body-base64"


class KeyRefused(ValueError):
    """The header's value cannot be an idempotency key."""


def parse_key(raw: str) -> str:
    """The key in an ``Idempotency-Key`` header value.

    The httpapi draft makes the value a structured-field string (``"abc"``); a bare value is
    taken as is. A key is 1 to 255 printable ASCII characters.
    """
    value = raw.strip()
    if len(value) >= 2 and value.startswith('"') and value.endswith('"'):
        value = value[1:-1].replace('\\"', '"').replace("\\\\", "\\")
    if not value:
        raise KeyRefused("The Idempotency-Key header is empty.")
    if len(value) > MAX_KEY_LENGTH:
        raise KeyRefused(f"An Idempotency-Key is at most {MAX_KEY_LENGTH} characters.")
    if not all(" " <= c <= "~" for c in value):
        raise KeyRefused("An Idempotency-Key is printable ASCII only.")
    return value


async def agency_of(database: Database, secret: str) -> str | None:
    """The agency whose valid API key ``secret`` is, resolved as every request resolves it."""
    async with database.session() as session:
        viewer = await authenticate(session, "api_key", secret)
    return viewer.agency_id if viewer is not None and viewer.kind == "agency" else None


@dataclass(frozen=True)
class Answer:
    status_code: int
    headers: list[tuple[str, str]]
    body: bytes


@dataclass(frozen=True)
class Claim:
    """What became of a claim: ``claimed`` (run the request), ``running`` (another request
    holds the key; ``since`` it was claimed) or ``done`` (``row`` holds the answer)."""

    outcome: Literal["claimed", "running", "done"]
    row: IdempotencyKey | None = None
    since: dt.datetime | None = None


async def claim(database: Database, *, agency_id: str, key: str, lifetime: dt.timedelta) -> Claim:
    """Claim ``key`` for the agency, committed at once; or say who holds it.

    A row older than ``lifetime`` is gone as far as callers are concerned: it is deleted
    and the key claimed afresh.
    """
    for _ in range(3):
        async with database.session() as session:
            if await _insert_new(session, agency_id=agency_id, key=key):
                return Claim("claimed")
            # Read committed (PostgreSQL) or the write lock (SQLite): this sees the row that
            # stopped the insert, unless it was released in between.
            row = await session.get(IdempotencyKey, (agency_id, key))
            if row is None:
                continue
            if row.created_at <= utcnow() - lifetime:
                await session.exec(
                    delete(IdempotencyKey).where(
                        col(IdempotencyKey.agency_id) == agency_id,
                        col(IdempotencyKey.key) == key,
                        col(IdempotencyKey.created_at) == row.created_at,
                    )
                )
                continue
            if row.status_code is None:
                return Claim("running", since=row.created_at)
            return Claim("done", row=row)
    # The key changed hands three times while we looked: someone else is clearly using it.
    return Claim("running", since=utcnow())


async def _insert_new(session: AsyncSession, *, agency_id: str, key: str) -> bool:
    insert = pg_insert if session.get_bind().dialect.name == "postgresql" else sqlite_insert
    result = await session.exec(
        insert(IdempotencyKey)
        .values(
            agency_id=agency_id,
            key=key,
            request_hash="",
            response_headers={},
            created_at=utcnow(),
        )
        .on_conflict_do_nothing(index_elements=["agency_id", "key"])
    )
    return bool(result.rowcount)


async def store_answer(
    database: Database, *, agency_id: str, key: str, request_hash: str, answer: Answer
) -> None:
    """Keep the answer of the request that claimed ``key``, for replays."""
    headers: dict[str, str] = {
        name: value for name, value in answer.headers if name in REPLAYED_HEADERS
    }
    try:
        body = answer.body.decode()
    except UnicodeDecodeError:
        body = base64.b64encode(answer.body).decode()
        headers[_BASE64_MARK] = "1"
    async with database.session() as session:
        row = await session.get(IdempotencyKey, (agency_id, key))
        if row is None:
            return
        row.request_hash = request_hash
        row.status_code = answer.status_code
        row.response_body = body
        row.response_headers = headers
        session.add(row)


async def release(database: Database, *, agency_id: str, key: str) -> None:
    """Give up a claim whose request did not get an answer worth keeping."""
    async with database.session() as session:
        await session.exec(
            delete(IdempotencyKey).where(
                col(IdempotencyKey.agency_id) == agency_id,
                col(IdempotencyKey.key) == key,
                col(IdempotencyKey.status_code).is_(None),
            )
        )


def stored_answer(row: IdempotencyKey) -> Answer:
    """The answer kept in ``row``, as it was given."""
    headers = dict(row.response_headers)
    body_text = row.response_body or ""
    body = base64.b64decode(body_text) if headers.pop(_BASE64_MARK, None) else body_text.encode()
    return Answer(
        status_code=row.status_code or 200,
        headers=[(name, str(value)) for name, value in headers.items()],
        body=body,
    )


async def purge_expired(session: AsyncSession, *, lifetime: dt.timedelta) -> int:
    """Delete keys older than ``lifetime`` (they no longer replay anyway); how many went."""
    result = await session.exec(
        delete(IdempotencyKey).where(col(IdempotencyKey.created_at) <= utcnow() - lifetime)
    )
    return int(result.rowcount)
