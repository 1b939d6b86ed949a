"""A case's day of entering its stage as a column (it was only in the state's JSON), in the
index of open cases by stage: insights count open cases by it without reading them.

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-07 07:20:00+00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0011"
down_revision: str | Sequence[str] | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

OPEN = "status <> 'closed'"


def upgrade() -> None:
    with op.batch_alter_table("case", schema=None) as batch_op:
        batch_op.add_column(sa.Column("stage_entered_on", sa.Date(), nullable=True))
    if op.get_bind().dialect.name == "postgresql":
        op.execute(
            """UPDATE "case" SET stage_entered_on = (state ->> 'stage_entered_on')::date
            WHERE state ->> 'stage_entered_on' IS NOT NULL"""
        )
    else:
        op.execute(
            """UPDATE "case" SET stage_entered_on = json_extract(state, '$.stage_entered_on')
            WHERE json_extract(state, '$.stage_entered_on') IS NOT NULL"""
        )
    with op.batch_alter_table("case", schema=None) as batch_op:
        batch_op.drop_index("ix_case_open_stage")
        batch_op.create_index(
            "ix_case_open_stage",
            ["agency_id", "journey_id", "stage", "stage_entered_on"],
            unique=False,
            postgresql_where=sa.text(OPEN),
            sqlite_where=sa.text(OPEN),
        )


def downgrade() -> None:
    with op.batch_alter_table("case", schema=None) as batch_op:
        batch_op.drop_index("ix_case_open_stage")
        batch_op.create_index(
            "ix_case_open_stage",
            ["agency_id", "journey_id", "stage"],
            unique=False,
            postgresql_where=sa.text(OPEN),
            sqlite_where=sa.text(OPEN),
        )
        batch_op.drop_column("stage_entered_on")
