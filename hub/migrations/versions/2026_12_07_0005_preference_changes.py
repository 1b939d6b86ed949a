"""Every change of a party's preferences (channel, language, needs) is kept: from what to
what, by whom, through which channel.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-07 02:59:14.982645+00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

import hub.db

revision: str = "0005"
down_revision: str | Sequence[str] | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "preference_change",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("party_id", sa.Uuid(), nullable=False),
        sa.Column("preference", sqlmodel.sql.sqltypes.AutoString(length=20), nullable=False),
        sa.Column("before", sa.JSON(), nullable=True),
        sa.Column("after", sa.JSON(), nullable=True),
        sa.Column("changed_by_kind", sqlmodel.sql.sqltypes.AutoString(length=20), nullable=False),
        sa.Column("changed_by_id", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=True),
        sa.Column("changed_by_name", sqlmodel.sql.sqltypes.AutoString(length=300), nullable=False),
        sa.Column("source", sqlmodel.sql.sqltypes.AutoString(length=20), nullable=False),
        sa.Column("changed_at", hub.db.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["party_id"], ["party.id"], name=op.f("fk_preference_change_party_id_party")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_preference_change")),
    )
    with op.batch_alter_table("preference_change", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_preference_change_party_id"), ["party_id"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("preference_change", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_preference_change_party_id"))

    op.drop_table("preference_change")
