"""The access log becomes append-only in the database and a hash chain: each entry holds its
place (seq), a pseudonym of the citizen (subject), the hash of the entry before it and its own.
Existing entries are chained in the order they were written. party_id may become NULL (what
retention does, the only change the new triggers allow) and case_id loses its foreign key, so
that an entry outlives a case that retention removes.

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-07 06:10:00+00:00
"""

import datetime as dt
import uuid
from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from alembic import op

revision: str = "0010"
down_revision: str | Sequence[str] | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# The same statements as hub.models.access makes after create_all, as they stood here.
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
    """
    CREATE TRIGGER access_log_no_update BEFORE UPDATE ON access_log
    WHEN NOT (OLD.party_id IS NOT NULL AND NEW.party_id IS NULL AND
        NEW.id IS OLD.id AND
        NEW.seq IS OLD.seq AND
        NEW.subject IS OLD.subject AND
        NEW.actor_kind IS OLD.actor_kind AND
        NEW.actor_id IS OLD.actor_id AND
        NEW.actor_name IS OLD.actor_name AND
        NEW.agency_id IS OLD.agency_id AND
        NEW.processing_activity_id IS OLD.processing_activity_id AND
        NEW.action IS OLD.action AND
        NEW.data IS OLD.data AND
        NEW.case_id IS OLD.case_id AND
        NEW.request_id IS OLD.request_id AND
        NEW.created_at IS OLD.created_at AND
        NEW.prev_hash IS OLD.prev_hash AND
        NEW.entry_hash IS OLD.entry_hash)
    BEGIN SELECT RAISE(ABORT, 'access_log is append-only: UPDATE refused'); END
    """,
)


def _uuid(value: Any) -> uuid.UUID | None:
    if value is None or isinstance(value, uuid.UUID):
        return value
    return uuid.UUID(str(value))


def _chain_existing_entries() -> None:
    """Give the entries written before the chain their place, subject and hashes, oldest
    first, as the hub itself would have."""
    from hub.access.chain import GENESIS, entry_hash, pseudonym
    from hub.models import AccessLogEntry

    connection = op.get_bind()
    table = sa.Table("access_log", sa.MetaData(), autoload_with=connection)
    rows = connection.execute(sa.select(table).order_by(table.c.created_at, table.c.id)).mappings()
    previous = GENESIS
    for seq, row in enumerate(list(rows), start=1):
        created_at: dt.datetime = row["created_at"]
        if created_at.tzinfo is None:
            created_at = created_at.replace(tzinfo=dt.UTC)
        party_id = _uuid(row["party_id"])
        assert party_id is not None
        entry = AccessLogEntry(
            id=uuid.UUID(str(row["id"])),
            seq=seq,
            party_id=party_id,
            subject=pseudonym(party_id),
            actor_kind=row["actor_kind"],
            actor_id=row["actor_id"],
            actor_name=row["actor_name"],
            agency_id=row["agency_id"],
            processing_activity_id=row["processing_activity_id"],
            action=row["action"],
            data=row["data"],
            case_id=_uuid(row["case_id"]),
            request_id=row["request_id"],
            created_at=created_at,
            prev_hash=previous,
        )
        entry.entry_hash = entry_hash(entry)
        connection.execute(
            table.update()
            .where(table.c.id == row["id"])
            .values(
                seq=seq,
                subject=entry.subject,
                prev_hash=entry.prev_hash,
                entry_hash=entry.entry_hash,
            )
        )
        previous = entry.entry_hash


def upgrade() -> None:
    with op.batch_alter_table("access_log", schema=None) as batch_op:
        batch_op.add_column(sa.Column("seq", sa.BigInteger(), nullable=True))
        batch_op.add_column(sa.Column("subject", sa.String(length=64), nullable=True))
        batch_op.add_column(sa.Column("prev_hash", sa.String(length=64), nullable=True))
        batch_op.add_column(sa.Column("entry_hash", sa.String(length=64), nullable=True))
        batch_op.alter_column("party_id", existing_type=sa.Uuid(), nullable=True)
        batch_op.drop_constraint("fk_access_log_case_id_case", type_="foreignkey")

    _chain_existing_entries()

    with op.batch_alter_table("access_log", schema=None) as batch_op:
        batch_op.alter_column("seq", existing_type=sa.BigInteger(), nullable=False)
        batch_op.alter_column("subject", existing_type=sa.String(length=64), nullable=False)
        batch_op.alter_column("prev_hash", existing_type=sa.String(length=64), nullable=False)
        batch_op.alter_column("entry_hash", existing_type=sa.String(length=64), nullable=False)
        batch_op.create_unique_constraint(batch_op.f("uq_access_log_seq"), ["seq"])
        batch_op.create_index(batch_op.f("ix_access_log_subject"), ["subject"], unique=False)

    statements = (
        SQLITE_APPEND_ONLY if op.get_bind().dialect.name == "sqlite" else POSTGRES_APPEND_ONLY
    )
    for statement in statements:
        op.execute(statement)


def downgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":
        op.execute("DROP TRIGGER IF EXISTS access_log_no_update")
        op.execute("DROP TRIGGER IF EXISTS access_log_no_delete")
    else:
        op.execute("DROP TRIGGER IF EXISTS access_log_no_truncate ON access_log")
        op.execute("DROP TRIGGER IF EXISTS access_log_append_only ON access_log")
        op.execute("DROP FUNCTION IF EXISTS access_log_refuse_change()")
    # Entries retention pseudonymised have no party to go back to, nor their cases a row.
    op.execute("DELETE FROM access_log WHERE party_id IS NULL")
    op.execute(
        "UPDATE access_log SET case_id = NULL WHERE case_id IS NOT NULL "
        'AND case_id NOT IN (SELECT id FROM "case")'
    )
    with op.batch_alter_table("access_log", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_access_log_subject"))
        batch_op.drop_constraint(batch_op.f("uq_access_log_seq"), type_="unique")
        batch_op.create_foreign_key(
            batch_op.f("fk_access_log_case_id_case"), "case", ["case_id"], ["id"]
        )
        batch_op.alter_column("party_id", existing_type=sa.Uuid(), nullable=False)
        batch_op.drop_column("entry_hash")
        batch_op.drop_column("prev_hash")
        batch_op.drop_column("subject")
        batch_op.drop_column("seq")
