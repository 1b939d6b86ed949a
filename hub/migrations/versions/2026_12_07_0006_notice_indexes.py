"""Notices keep only the indexes their readers use: a bulk job writes a million rows, and
every index costs each of them. The status, creation time and topic indexes make way for
two partial ones: texts held through quiet hours, and important notices still unread.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-07 03:35:00+00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | Sequence[str] | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

HELD = "status = 'created'"
UNREAD_IMPORTANT = "important AND read_at IS NULL AND escalated_at IS NULL"


def upgrade() -> None:
    with op.batch_alter_table("notice", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_notice_status"))
        batch_op.drop_index(batch_op.f("ix_notice_created_at"))
        batch_op.drop_index(batch_op.f("ix_notice_topic_id"))
        batch_op.create_index(
            "ix_notice_held",
            ["created_at"],
            unique=False,
            postgresql_where=sa.text(HELD),
            sqlite_where=sa.text(HELD),
        )
        batch_op.create_index(
            "ix_notice_unread_important",
            ["created_at"],
            unique=False,
            postgresql_where=sa.text(UNREAD_IMPORTANT),
            sqlite_where=sa.text(UNREAD_IMPORTANT),
        )


def downgrade() -> None:
    with op.batch_alter_table("notice", schema=None) as batch_op:
        batch_op.drop_index("ix_notice_unread_important")
        batch_op.drop_index("ix_notice_held")
        batch_op.create_index(batch_op.f("ix_notice_topic_id"), ["topic_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_notice_created_at"), ["created_at"], unique=False)
        batch_op.create_index(batch_op.f("ix_notice_status"), ["status"], unique=False)
