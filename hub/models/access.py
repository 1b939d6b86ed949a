"""The access log a citizen can read: who read or changed their data, when, and on what ground.

The log is append-only in the database itself (triggers on both backends, see
:data:`APPEND_ONLY_DDL`) and a hash chain: each entry holds the hash of the one before it
(``prev_hash``) and its own (``entry_hash``) over its fields, with the citizen named by a
pseudonym (``subject``). The one change the triggers let through is the one retention makes:
``party_id`` set to NULL, which leaves the pseudonym, and so the chain, as it was.
"""

from __future__ import annotations

import datetime as dt
import uuid

from sqlalchemy import DDL, BigInteger, Column, Table, event
from sqlmodel import Field, SQLModel

from hub.models._columns import new_id, timestamp


class AccessLogEntry(SQLModel, table=True):
    __tablename__ = "access_log"

    id: uuid.UUID = Field(default_factory=new_id, primary_key=True)
    # The chain: 1, 2, 3… without gaps, each entry over the hash of the one before.
    # seq, prev_hash and entry_hash are set by hub.access.chain.append_entry.
    seq: int = Field(default=0, sa_column=Column(BigInteger, nullable=False, unique=True))
    # NULL once retention has pseudonymised the entry; ``subject`` stays.
    party_id: uuid.UUID | None = Field(default=None, foreign_key="party.id", index=True)
    # HMAC-SHA256 of the party id under the hub's access log key, in hex.
    subject: str = Field(max_length=64, index=True)
    actor_kind: str = Field(max_length=20)  # staff | agency | citizen | representative | system
    actor_id: str | None = Field(default=None, max_length=64)
    actor_name: str | None = Field(default=None, max_length=200)
    agency_id: str | None = Field(default=None, foreign_key="agency.id", max_length=64)
    processing_activity_id: int | None = Field(default=None, foreign_key="processing_activity.id")
    action: str = Field(max_length=20)  # read | change | search | list
    data: str = Field(max_length=100)  # what was seen: case, timeline, party, case_list…
    # No foreign key: the entry outlives a case that retention removes.
    case_id: uuid.UUID | None = Field(default=None, index=True)
    request_id: str | None = Field(default=None, max_length=64)
    created_at: dt.datetime = timestamp(index=True)
    prev_hash: str = Field(default="", max_length=64)
    entry_hash: str = Field(default="", max_length=64)


# No '%' in these: DDL() formats its text. The migration runs the same statements.

# Every column but party_id: an UPDATE that touches any of them is refused on SQLite.
SEALED_COLUMNS = (
    "id",
    "seq",
    "subject",
    "actor_kind",
    "actor_id",
    "actor_name",
    "agency_id",
    "processing_activity_id",
    "action",
    "data",
    "case_id",
    "request_id",
    "created_at",
    "prev_hash",
    "entry_hash",
)

POSTGRES_APPEND_ONLY = (
    """
    CREATE OR REPLACE FUNCTION access_log_refuse_change() RETURNS trigger
    LANGUAGE plpgsql AS $$
    BEGIN
        IF TG_OP = 'UPDATE' THEN
            IF OLD.party_id IS NOT NULL AND NEW.party_id IS NULL
               AND to_jsonb(NEW) - 'party_id' = to_jsonb(OLD) - 'party_id' THEN
                RETURN NEW;
            END IF;
        END IF;
        RAISE EXCEPTION USING
            MESSAGE = 'access_log is append-only: ' || TG_OP || ' refused',
            ERRCODE = 'insufficient_privilege';
    END
    $$
    """,
    """
    CREATE TRIGGER access_log_append_only BEFORE UPDATE OR DELETE ON access_log
    FOR EACH ROW EXECUTE FUNCTION access_log_refuse_change()
    """,
    """
    CREATE TRIGGER access_log_no_truncate BEFORE TRUNCATE ON access_log
    FOR EACH STATEMENT EXECUTE FUNCTION access_log_refuse_change()
    """,
    # Roles other than the owner (the hub's own, where one is configured) keep INSERT and
    # SELECT, and may set party_id only: the trigger above then allows just NULL.
    """
    DO $$
    DECLARE grantee_name text;
    BEGIN
        FOR grantee_name IN
            SELECT DISTINCT g.grantee FROM information_schema.role_table_grants g
            WHERE g.table_name = 'access_log'
              AND g.privilege_type IN ('UPDATE', 'DELETE', 'TRUNCATE')
              AND g.grantee NOT IN (
                  SELECT tableowner FROM pg_tables WHERE tablename = 'access_log')
        LOOP
            IF grantee_name = 'PUBLIC' THEN
                REVOKE UPDATE, DELETE, TRUNCATE ON access_log FROM PUBLIC;
            ELSE
                EXECUTE 'REVOKE UPDATE, DELETE, TRUNCATE ON access_log FROM '
                    || quote_ident(grantee_name);
                EXECUTE 'GRANT UPDATE (party_id) ON access_log TO ' || quote_ident(grantee_name);
            END IF;
        END LOOP;
    END
    $$
    """,
)

SQLITE_APPEND_ONLY = (
    """
    CREATE TRIGGER access_log_no_delete BEFORE DELETE ON access_log
    BEGIN SELECT RAISE(ABORT, 'access_log is append-only: DELETE refused'); END
    """,
    f"""
    CREATE TRIGGER access_log_no_update BEFORE UPDATE ON access_log
    WHEN NOT (OLD.party_id IS NOT NULL AND NEW.party_id IS NULL AND
        {" AND ".join(f"NEW.{c} IS OLD.{c}" for c in SEALED_COLUMNS)})
    BEGIN SELECT RAISE(ABORT, 'access_log is append-only: UPDATE refused'); END
    """,
)

ACCESS_LOG_TABLE: Table = AccessLogEntry.__table__  # type: ignore[attr-defined]


def _after_create(statement: str, dialect: str) -> None:
    ddl = DDL(statement)  # type: ignore[no-untyped-call]
    event.listen(ACCESS_LOG_TABLE, "after_create", ddl.execute_if(dialect=dialect))


for _statement in POSTGRES_APPEND_ONLY:
    _after_create(_statement, "postgresql")
for _statement in SQLITE_APPEND_ONLY:
    _after_create(_statement, "sqlite")
