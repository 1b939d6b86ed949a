"""Insights keep the figures of completed days per agency, journey and channel, each day with
the fingerprint of the cases and messages it was counted from.

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-07 06:20:00+00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

import hub.db

revision: str = "0009"
down_revision: str | Sequence[str] | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TEXT = sqlmodel.sql.sqltypes.AutoString


def upgrade() -> None:
    op.create_table(
        "insight_day",
        sa.Column("agency_id", TEXT(length=64), nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("cases", sa.Integer(), nullable=False),
        sa.Column("case_events", sa.BigInteger(), nullable=False),
        sa.Column("inbound", sa.Integer(), nullable=False),
        sa.Column("rolled_at", hub.db.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["agency_id"], ["agency.id"], name=op.f("fk_insight_day_agency_id_agency")
        ),
        sa.PrimaryKeyConstraint("agency_id", "day", name=op.f("pk_insight_day")),
    )
    op.create_table(
        "insight_cohort",
        sa.Column("agency_id", TEXT(length=64), nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("journey_id", TEXT(length=100), nullable=False),
        sa.Column("opened", sa.Integer(), nullable=False),
        sa.Column("closed", sa.Integer(), nullable=False),
        sa.Column("within_norm", sa.Integer(), nullable=False),
        sa.Column("lead_days", sa.Integer(), nullable=False),
        sa.Column("contacts", sa.Integer(), nullable=False),
        sa.Column("switches", sa.Integer(), nullable=False),
        sa.Column("first_contact_resolved", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("agency_id", "day", "journey_id", name=op.f("pk_insight_cohort")),
    )
    op.create_table(
        "insight_first_response",
        sa.Column("agency_id", TEXT(length=64), nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("journey_id", TEXT(length=100), nullable=False),
        sa.Column("channel", TEXT(length=20), nullable=False),
        sa.Column("cases", sa.Integer(), nullable=False),
        sa.Column("answered", sa.Integer(), nullable=False),
        sa.Column("waited_ms", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint(
            "agency_id", "day", "journey_id", "channel", name=op.f("pk_insight_first_response")
        ),
    )
    op.create_table(
        "insight_channel_day",
        sa.Column("agency_id", TEXT(length=64), nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("journey_id", TEXT(length=100), nullable=False),
        sa.Column("channel", TEXT(length=20), nullable=False),
        sa.Column("messages", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint(
            "agency_id", "day", "journey_id", "channel", name=op.f("pk_insight_channel_day")
        ),
    )


def downgrade() -> None:
    op.drop_table("insight_channel_day")
    op.drop_table("insight_first_response")
    op.drop_table("insight_cohort")
    op.drop_table("insight_day")
