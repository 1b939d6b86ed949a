"""Notice jobs read their file by byte offset; rejected rows get a table of their own;
notices lose foreign keys and indexes a bulk job would pay for on every row.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-28 21:31:48.618398+00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

import hub.db

revision: str = "0004"
down_revision: str | Sequence[str] | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "notice_job_rejection",
        sa.Column("job_id", sa.Uuid(), nullable=False),
        sa.Column("row", sa.Integer(), nullable=False),
        sa.Column("error", sqlmodel.sql.sqltypes.AutoString(length=1000), nullable=False),
        sa.Column("content", sqlmodel.sql.sqltypes.AutoString(length=2000), nullable=False),
        sa.ForeignKeyConstraint(
            ["job_id"], ["notice_job.id"], name=op.f("fk_notice_job_rejection_job_id_notice_job")
        ),
        sa.PrimaryKeyConstraint("job_id", "row", name=op.f("pk_notice_job_rejection")),
    )
    # Jobs made before this revision keep their counts; their rows' errors were a JSON list.
    with op.batch_alter_table("notice_job", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column(
                "filename",
                sqlmodel.sql.sqltypes.AutoString(length=255),
                nullable=False,
                server_default="",
            )
        )
        batch_op.add_column(sa.Column("size", sa.BigInteger(), nullable=False, server_default="0"))
        batch_op.add_column(
            sa.Column("offset", sa.BigInteger(), nullable=False, server_default="0")
        )
        batch_op.add_column(
            sa.Column("duplicates", sa.Integer(), nullable=False, server_default="0")
        )
        batch_op.add_column(
            sa.Column("error", sqlmodel.sql.sqltypes.AutoString(length=1000), nullable=True)
        )
        batch_op.add_column(
            sa.Column("started_at", hub.db.UTCDateTime(timezone=True), nullable=True)
        )
        batch_op.drop_column("rows")
        batch_op.drop_column("errors")
    # A bulk job writes a million notices: no foreign key to the agency, topic and job (rows
    # never deleted, named by the hub itself), and no index that the (agency_id, dedupe_key)
    # one or no query needs.
    with op.batch_alter_table("notice", schema=None) as batch_op:
        batch_op.drop_constraint("fk_notice_agency_id_agency", type_="foreignkey")
        batch_op.drop_constraint("fk_notice_topic_id_consent_topic", type_="foreignkey")
        batch_op.drop_constraint("fk_notice_job_id_notice_job", type_="foreignkey")
        batch_op.drop_index(batch_op.f("ix_notice_agency_id"))
        batch_op.drop_index(batch_op.f("ix_notice_job_id"))
        # The daily cap counts a party's notices of an agency since the day began.
        batch_op.drop_index(batch_op.f("ix_notice_party_id"))
        batch_op.create_index(
            "ix_notice_party_day", ["party_id", "agency_id", "created_at"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("notice", schema=None) as batch_op:
        batch_op.drop_index("ix_notice_party_day")
        batch_op.create_index(batch_op.f("ix_notice_party_id"), ["party_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_notice_job_id"), ["job_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_notice_agency_id"), ["agency_id"], unique=False)
        batch_op.create_foreign_key("fk_notice_job_id_notice_job", "notice_job", ["job_id"], ["id"])
        batch_op.create_foreign_key(
            "fk_notice_topic_id_consent_topic", "consent_topic", ["topic_id"], ["id"]
        )
        batch_op.create_foreign_key("fk_notice_agency_id_agency", "agency", ["agency_id"], ["id"])
    with op.batch_alter_table("notice_job", schema=None) as batch_op:
        batch_op.add_column(sa.Column("errors", sa.JSON(), nullable=False, server_default="[]"))
        batch_op.add_column(sa.Column("rows", sa.Integer(), nullable=False, server_default="0"))
        batch_op.drop_column("started_at")
        batch_op.drop_column("error")
        batch_op.drop_column("duplicates")
        batch_op.drop_column("offset")
        batch_op.drop_column("size")
        batch_op.drop_column("filename")
    op.drop_table("notice_job_rejection")
