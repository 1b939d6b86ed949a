"""The ASGI middleware that makes an agency's POST or PATCH with an ``Idempotency-Key`` run
once (the IETF httpapi "Idempotency-Key HTTP Header Field" draft).

For a request made with an agency API key and the header:

- the key is claimed for the agency (committed before the request runs); keys of one agency
  never meet another's;
- the request runs while its body is hashed on the way through (method, path and query,
  body bytes: memory stays flat for a large upload);
- its answer is stored with the hash, and only then sent: what a client was told is what a
  retry is told. A 5xx answer, or a request that raised, is not stored: the key is released
  and a retry runs again;
- the same key later: with the same hash the stored answer is replayed (with
  ``Idempotent-Replayed: true``), with another hash 422; while the first still runs, 409.

Requests without the header, or made by citizens or staff, work as before: the header is
accepted, never required.

Consistency: the handler's own transaction commits before its answer leaves the handler;
the answer is stored in a second transaction just after. If the process dies between the
two, the effect happened but no answer was kept: the key stays claimed, and every retry
gets 409 (never a second effect) until the key expires (``idempotency_key_hours``). After
:data:`STALE_AFTER` the 409 says so, so the agency knows to look the result up (or use a
new key) instead of retrying forever.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import itertools
from collections.abc import MutableMapping
from typing import Any

from starlette.requests import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from hub.auth.dependencies import presented_credential
from hub.config import Settings
from hub.db import Database, utcnow
from hub.errors import HubError, problem
from hub.idempotency.service import (
    Answer,
    KeyRefused,
    agency_of,
    claim,
    parse_key,
    purge_expired,
    release,
    store_answer,
    stored_answer,
)

HEADER = "idempotency-key"
METHODS = ("POST", "PATCH")
STALE_AFTER = dt.timedelta(minutes=5)
# Every this many claims, a process deletes the expired keys: the table stays as small as a
# day's keys without a job of its own, and no single request pays for more than that.
PURGE_EVERY = 1000
STILL_RUNNING = "A request with this Idempotency-Key is still being processed; retry later."
OUTCOME_UNKNOWN = (
    "The request first made with this Idempotency-Key started {minutes} minutes ago and its "
    "answer was never stored: it may have taken effect. Check its result before sending it "
    "again under a new key."
)
OTHER_REQUEST = (
    "This Idempotency-Key was used for a different request (another method, path or body). "
    "Use a new key for a new request."
)


class _Digest:
    """The hash of a request: its method, path and query, and its body as it streams by."""

    def __init__(self, scope: Scope) -> None:
        self._hash = hashlib.sha256()
        query = scope.get("query_string", b"")
        self._hash.update(f"{scope['method']} {scope['path']}?".encode() + query + b"\n")
        self.complete = False

    def update(self, message: Message) -> None:
        if message["type"] == "http.request":
            self._hash.update(message.get("body", b""))
            if not message.get("more_body", False):
                self.complete = True
        elif message["type"] == "http.disconnect":
            self.complete = True

    async def finish(self, receive: Receive) -> str:
        """The hex digest, reading whatever of the body the handler left unread."""
        while not self.complete:
            self.update(await receive())
        return self._hash.hexdigest()


class Idempotency:
    """Runs an agency's keyed POST or PATCH once and replays its answer."""

    def __init__(self, app: ASGIApp, *, settings: Settings) -> None:
        self.app = app
        self.lifetime = dt.timedelta(hours=settings.idempotency_key_hours)
        self._claims = itertools.count(1)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] not in METHODS:
            await self.app(scope, receive, send)
            return
        request = Request(scope)
        raw_key = request.headers.get(HEADER)
        secret = _agency_secret(request)
        if raw_key is None or secret is None:
            await self.app(scope, receive, send)
            return
        try:
            key = parse_key(raw_key)
        except KeyRefused as refused:
            await _problem(scope, receive, send, 400, "Bad request", str(refused), "bad-request")
            return
        database: Database = scope["app"].state.database
        agency_id = await agency_of(database, secret)
        if agency_id is None:  # not a valid key: authentication answers 401 as usual
            await self.app(scope, receive, send)
            return
        held = await claim(database, agency_id=agency_id, key=key, lifetime=self.lifetime)
        if held.outcome == "running":
            age = utcnow() - (held.since or utcnow())
            detail = (
                OUTCOME_UNKNOWN.format(minutes=int(age.total_seconds() // 60))
                if age >= STALE_AFTER
                else STILL_RUNNING
            )
            await _problem(scope, receive, send, 409, "Conflict", detail, "conflict")
            return
        if held.outcome == "claimed" and next(self._claims) % PURGE_EVERY == 0:
            async with database.session() as session:
                await purge_expired(session, lifetime=self.lifetime)
        digest = _Digest(scope)
        if held.row is not None:
            if await digest.finish(receive) != held.row.request_hash:
                await _problem(
                    scope, receive, send, 422, "Invalid input", OTHER_REQUEST, "invalid-input"
                )
                return
            await _send_answer(send, stored_answer(held.row), replayed=True)
            return
        await self._run(scope, receive, send, database, agency_id, key, digest)

    async def _run(
        self,
        scope: Scope,
        receive: Receive,
        send: Send,
        database: Database,
        agency_id: str,
        key: str,
        digest: _Digest,
    ) -> None:
        start: MutableMapping[str, Any] = {}
        body = bytearray()

        async def hashing_receive() -> Message:
            message = await receive()
            digest.update(message)
            return message

        async def keeping_send(message: Message) -> None:
            if message["type"] == "http.response.start":
                start.update(message)
            elif message["type"] == "http.response.body":
                body.extend(message.get("body", b""))

        try:
            await self.app(scope, hashing_receive, keeping_send)
        except BaseException:
            await release(database, agency_id=agency_id, key=key)
            raise
        status = int(start.get("status", 500))
        headers = [(n.decode("latin-1"), v.decode("latin-1")) for n, v in start.get("headers", [])]
        answer = Answer(status_code=status, headers=headers, body=bytes(body))
        if status >= 500:
            await release(database, agency_id=agency_id, key=key)
        else:
            try:
                request_hash = await digest.finish(receive)
            except BaseException:
                # The rest of the body could not be read (too large, the client gone): with
                # no hash to keep the answer under, the key is let go for a retry.
                await release(database, agency_id=agency_id, key=key)
                raise
            await store_answer(
                database, agency_id=agency_id, key=key, request_hash=request_hash, answer=answer
            )
        await _send_answer(send, answer, replayed=False)


def _agency_secret(request: Request) -> str | None:
    try:
        credential = presented_credential(request)
    except HubError:
        return None
    if credential is None or credential[0] != "api_key":
        return None
    return credential[1]


async def _send_answer(send: Send, answer: Answer, *, replayed: bool) -> None:
    headers = [
        (name.encode("latin-1"), value.encode("latin-1"))
        for name, value in answer.headers
        if name.lower() != "content-length"
    ]
    headers.append((b"content-length", str(len(answer.body)).encode()))
    if replayed:
        headers.append((b"idempotent-replayed", b"true"))
    await send({"type": "http.response.start", "status": answer.status_code, "headers": headers})
    await send({"type": "http.response.body", "body": answer.body})


async def _problem(
    scope: Scope, receive: Receive, send: Send, status: int, title: str, detail: str, kind: str
) -> None:
    await problem(status, title, detail, kind, scope["path"])(scope, receive, send)
