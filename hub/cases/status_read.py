"""The hot path of the hub's most frequent request: a citizen reading their own case.

On PostgreSQL, ``GET /api/cases/{id}`` by a citizen with a session token asks one statement,
on the bare asyncpg connection and outside a transaction: the session (live: not revoked, not
expired), its citizen, the case if it is theirs, and what the answer shows beside it (the
agency's name, the contact person, the agencies taking part). Through the ORM that was four
statements inside BEGIN and COMMIT, each costing more Python than the bare read.

It answers only that case and otherwise says nothing: a staff member, an agency system, a
representative, someone else's case, a case that does not exist, a token that is not valid —
each goes the ordinary way (:func:`hub.access.service.case_for_viewer`), which decides, and
writes the access log where a read is logged. A citizen's read of their own case is not
logged (it is not an access by someone else), so this path writes nothing.
"""

from __future__ import annotations

import datetime as dt
import uuid
from dataclasses import dataclass

from starlette.requests import Request

from hub.auth.dependencies import presented_credential
from hub.auth.sessions import MAX_TOKEN_LENGTH, hash_token
from hub.cases.service import CaseDetails
from hub.db import Database, utcnow
from journeys.engine import CaseState

# The statement's text is its key in asyncpg's cache of prepared statements, per connection:
# it is parsed and planned once, then only bound and run. ``$3`` is the hub's clock, not the
# server's, as in :func:`hub.auth.sessions.resolve_session`.
OWN_CASE = """
SELECT c.id, c.reference, c.journey_id, c.journey_version, c.title, c.agency_id, c.party_id,
       c.stage, c.status, c.result, c.expected_completion, c.opened_channel, c.created_at,
       c.updated_at, c.closed_at, c.last_seq, c.state::text AS state,
       p.preferred_language, a.name AS agency_name, s.display_name AS owner_name,
       ARRAY(SELECT cp.agency_id FROM case_participant cp
             WHERE cp.case_id = c.id ORDER BY cp.agency_id) AS participants
FROM login_session l
JOIN party p ON p.id = l.subject_id
JOIN "case" c ON c.id = $2 AND c.party_id = p.id
LEFT JOIN agency a ON a.id = c.agency_id
LEFT JOIN staff_member s ON s.id = c.owner_id
WHERE l.token_hash = $1 AND l.subject_kind = 'citizen'
  AND l.revoked_at IS NULL AND l.expires_at > $3
"""


@dataclass(frozen=True, slots=True)
class OwnCase:
    """A case as its own citizen reads it: the row's fields under the case's names, its
    journey state, and what the answer shows beside it (in the reader's language)."""

    id: uuid.UUID
    reference: str
    journey_id: str
    journey_version: int
    title: str
    agency_id: str
    party_id: uuid.UUID
    stage: str
    status: str
    result: str | None
    expected_completion: dt.date | None
    opened_channel: str
    created_at: dt.datetime
    updated_at: dt.datetime
    closed_at: dt.datetime | None
    last_seq: int
    state: CaseState
    details: CaseDetails


def case_id_in_path(request: Request) -> uuid.UUID | None:
    """The path's case id when written as ``str(uuid)`` writes it (lower case, hyphenated);
    None for any other spelling, which is left to the route's own validation."""
    raw = request.path_params.get("case_id")
    if not isinstance(raw, str) or len(raw) != 36:
        return None
    try:
        case_id = uuid.UUID(raw)
    except ValueError:
        return None
    return case_id if str(case_id) == raw else None


async def own_case(request: Request) -> OwnCase | None:
    """The case of the request's path when the request is its own citizen's, with a live
    session token, on PostgreSQL; else None, having decided nothing."""
    database: Database = request.app.state.database
    if database.dialect != "postgresql":
        return None
    credential = presented_credential(request)
    if credential is None or credential[0] != "session":
        return None
    token = credential[1]
    case_id = case_id_in_path(request)
    if case_id is None or len(token) > MAX_TOKEN_LENGTH:
        return None
    async with database.driver_connection() as connection:
        row = await connection.fetchrow(OWN_CASE, hash_token(token), case_id, utcnow())
    if row is None:
        return None
    return OwnCase(
        id=row["id"],
        reference=row["reference"],
        journey_id=row["journey_id"],
        journey_version=row["journey_version"],
        title=row["title"],
        agency_id=row["agency_id"],
        party_id=row["party_id"],
        stage=row["stage"],
        status=row["status"],
        result=row["result"],
        expected_completion=row["expected_completion"],
        opened_channel=row["opened_channel"],
        created_at=row["created_at"],
        updated_at=row["updated_at"],
        closed_at=row["closed_at"],
        last_seq=row["last_seq"],
        state=CaseState.model_validate_json(row["state"]),
        details=CaseDetails(
            agency_name=row["agency_name"],
            owner_name=row["owner_name"],
            participants=row["participants"],
            language=row["preferred_language"],
        ),
    )
