"""Insights read an agency's cases by the time they opened, its open cases by journey and
stage, the citizens' messages by the time they came, and notices by the time they were
made (a BRIN index on PostgreSQL: next to nothing for a bulk job to keep up).

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-07 04:00:00+00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007"
down_revision: str | Sequence[str] | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

OPEN = "status <> 'closed'"
INBOUND = "direction = 'inbound'"


def upgrade() -> None:
    with op.batch_alter_table("case", schema=None) as batch_op:
        batch_op.create_index("ix_case_agency_created", ["agency_id", "created_at"], unique=False)
        batch_op.create_index(
            "ix_case_open_stage",
            ["agency_id", "journey_id", "stage"],
            unique=False,
            postgresql_where=sa.text(OPEN),
            sqlite_where=sa.text(OPEN),
        )
    with op.batch_alter_table("message", schema=None) as batch_op:
        batch_op.create_index(
            "ix_message_inbound_created",
            ["created_at"],
            unique=False,
            postgresql_where=sa.text(INBOUND),
            sqlite_where=sa.text(INBOUND),
        )
    with op.batch_alter_table("notice", schema=None) as batch_op:
        batch_op.create_index(
            "ix_notice_created_brin", ["created_at"], unique=False, postgresql_using="brin"
        )


def downgrade() -> None:
    with op.batch_alter_table("notice", schema=None) as batch_op:
        batch_op.drop_index("ix_notice_created_brin")
    with op.batch_alter_table("message", schema=None) as batch_op:
        batch_op.drop_index("ix_message_inbound_created")
    with op.batch_alter_table("case", schema=None) as batch_op:
        batch_op.drop_index("ix_case_open_stage")
        batch_op.drop_index("ix_case_agency_created")
