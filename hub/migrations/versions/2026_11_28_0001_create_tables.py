"""Create the tables of the shared case record, parties, agencies, login, outbox and timers.

Revision ID: 0001
Revises:
Create Date: 2026-11-28 18:05:08.346205+00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

import hub.db

revision: str = "0001"
down_revision: str | Sequence[str] | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "agency",
        sa.Column("id", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("name", sqlmodel.sql.sqltypes.AutoString(length=200), nullable=False),
        sa.Column("opening_hours", sa.JSON(), nullable=False),
        sa.Column("created_at", hub.db.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_agency")),
    )
    op.create_table(
        "login_session",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("token_hash", sqlmodel.sql.sqltypes.AutoString(length=128), nullable=False),
        sa.Column("subject_kind", sqlmodel.sql.sqltypes.AutoString(length=10), nullable=False),
        sa.Column("subject_id", sa.Uuid(), nullable=False),
        sa.Column("identified_by", sqlmodel.sql.sqltypes.AutoString(length=30), nullable=False),
        sa.Column("created_at", hub.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("expires_at", hub.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("revoked_at", hub.db.UTCDateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_login_session")),
        sa.UniqueConstraint("token_hash", name=op.f("uq_login_session_token_hash")),
    )
    with op.batch_alter_table("login_session", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_login_session_subject_id"), ["subject_id"], unique=False
        )

    op.create_table(
        "party",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("kind", sqlmodel.sql.sqltypes.AutoString(length=20), nullable=False),
        sa.Column("bsn", sqlmodel.sql.sqltypes.AutoString(length=9), nullable=True),
        sa.Column("kvk_number", sqlmodel.sql.sqltypes.AutoString(length=8), nullable=True),
        sa.Column("name", sqlmodel.sql.sqltypes.AutoString(length=300), nullable=False),
        sa.Column("date_of_birth", sa.Date(), nullable=True),
        sa.Column("preferred_channel", sqlmodel.sql.sqltypes.AutoString(length=20), nullable=False),
        sa.Column("preferred_language", sqlmodel.sql.sqltypes.AutoString(length=5), nullable=False),
        sa.Column("needs", sa.JSON(), nullable=False),
        sa.Column("created_at", hub.db.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_party")),
        sa.UniqueConstraint("bsn", name=op.f("uq_party_bsn")),
        sa.UniqueConstraint("kvk_number", name=op.f("uq_party_kvk_number")),
    )
    op.create_table(
        "reference_counter",
        sa.Column("prefix", sqlmodel.sql.sqltypes.AutoString(length=8), nullable=False),
        sa.Column("year", sa.Integer(), nullable=False),
        sa.Column("last", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("prefix", "year", name=op.f("pk_reference_counter")),
    )
    op.create_table(
        "api_key",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("agency_id", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("name", sqlmodel.sql.sqltypes.AutoString(length=200), nullable=False),
        sa.Column("prefix", sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
        sa.Column("key_hash", sqlmodel.sql.sqltypes.AutoString(length=128), nullable=False),
        sa.Column("created_at", hub.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("revoked_at", hub.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("last_used_at", hub.db.UTCDateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["agency_id"], ["agency.id"], name=op.f("fk_api_key_agency_id_agency")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_api_key")),
        sa.UniqueConstraint("prefix", name=op.f("uq_api_key_prefix")),
    )
    with op.batch_alter_table("api_key", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_api_key_agency_id"), ["agency_id"], unique=False)

    op.create_table(
        "digital_address",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("party_id", sa.Uuid(), nullable=False),
        sa.Column("kind", sqlmodel.sql.sqltypes.AutoString(length=10), nullable=False),
        sa.Column("value", sqlmodel.sql.sqltypes.AutoString(length=320), nullable=False),
        sa.Column("verified_at", hub.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("created_at", hub.db.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["party_id"], ["party.id"], name=op.f("fk_digital_address_party_id_party")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_digital_address")),
        sa.UniqueConstraint("party_id", "kind", "value", name=op.f("uq_digital_address_party_id")),
    )
    with op.batch_alter_table("digital_address", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_digital_address_party_id"), ["party_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_digital_address_value"), ["value"], unique=False)

    op.create_table(
        "mandate",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("representative_id", sa.Uuid(), nullable=False),
        sa.Column("party_id", sa.Uuid(), nullable=False),
        sa.Column("all_journeys", sa.Boolean(), nullable=False),
        sa.Column("journeys", sa.JSON(), nullable=False),
        sa.Column("valid_from", hub.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("valid_until", hub.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("revoked_at", hub.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("created_at", hub.db.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["party_id"], ["party.id"], name=op.f("fk_mandate_party_id_party")),
        sa.ForeignKeyConstraint(
            ["representative_id"], ["party.id"], name=op.f("fk_mandate_representative_id_party")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_mandate")),
    )
    with op.batch_alter_table("mandate", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_mandate_party_id"), ["party_id"], unique=False)
        batch_op.create_index(
            batch_op.f("ix_mandate_representative_id"), ["representative_id"], unique=False
        )

    op.create_table(
        "processing_activity",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("agency_id", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("code", sqlmodel.sql.sqltypes.AutoString(length=100), nullable=False),
        sa.Column("purpose", sqlmodel.sql.sqltypes.AutoString(length=500), nullable=False),
        sa.Column("legal_ground", sqlmodel.sql.sqltypes.AutoString(length=500), nullable=False),
        sa.Column("created_at", hub.db.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["agency_id"], ["agency.id"], name=op.f("fk_processing_activity_agency_id_agency")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_processing_activity")),
        sa.UniqueConstraint("agency_id", "code", name=op.f("uq_processing_activity_agency_id")),
    )
    with op.batch_alter_table("processing_activity", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_processing_activity_agency_id"), ["agency_id"], unique=False
        )

    op.create_table(
        "staff_member",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("agency_id", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("email", sqlmodel.sql.sqltypes.AutoString(length=320), nullable=False),
        sa.Column("display_name", sqlmodel.sql.sqltypes.AutoString(length=200), nullable=False),
        sa.Column("role", sqlmodel.sql.sqltypes.AutoString(length=20), nullable=False),
        sa.Column("password_hash", sqlmodel.sql.sqltypes.AutoString(length=200), nullable=True),
        sa.Column("totp_secret", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=True),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("created_at", hub.db.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["agency_id"], ["agency.id"], name=op.f("fk_staff_member_agency_id_agency")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_staff_member")),
        sa.UniqueConstraint("email", name=op.f("uq_staff_member_email")),
    )
    with op.batch_alter_table("staff_member", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_staff_member_agency_id"), ["agency_id"], unique=False)

    op.create_table(
        "team",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("agency_id", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("name", sqlmodel.sql.sqltypes.AutoString(length=200), nullable=False),
        sa.ForeignKeyConstraint(
            ["agency_id"], ["agency.id"], name=op.f("fk_team_agency_id_agency")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_team")),
        sa.UniqueConstraint("agency_id", "name", name=op.f("uq_team_agency_id")),
    )
    with op.batch_alter_table("team", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_team_agency_id"), ["agency_id"], unique=False)

    op.create_table(
        "case",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("reference", sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
        sa.Column("journey_id", sqlmodel.sql.sqltypes.AutoString(length=100), nullable=False),
        sa.Column("journey_version", sa.Integer(), nullable=False),
        sa.Column("agency_id", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("party_id", sa.Uuid(), nullable=False),
        sa.Column("title", sqlmodel.sql.sqltypes.AutoString(length=300), nullable=False),
        sa.Column("stage", sqlmodel.sql.sqltypes.AutoString(length=100), nullable=False),
        sa.Column("status", sqlmodel.sql.sqltypes.AutoString(length=30), nullable=False),
        sa.Column("state", sa.JSON(), nullable=False),
        sa.Column("owner_id", sa.Uuid(), nullable=True),
        sa.Column("opened_channel", sqlmodel.sql.sqltypes.AutoString(length=20), nullable=False),
        sa.Column("expected_completion", sa.Date(), nullable=True),
        sa.Column("result", sqlmodel.sql.sqltypes.AutoString(length=50), nullable=True),
        sa.Column("last_seq", sa.Integer(), nullable=False),
        sa.Column("created_at", hub.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", hub.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("closed_at", hub.db.UTCDateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["agency_id"], ["agency.id"], name=op.f("fk_case_agency_id_agency")
        ),
        sa.ForeignKeyConstraint(
            ["owner_id"], ["staff_member.id"], name=op.f("fk_case_owner_id_staff_member")
        ),
        sa.ForeignKeyConstraint(["party_id"], ["party.id"], name=op.f("fk_case_party_id_party")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_case")),
        sa.UniqueConstraint("reference", name=op.f("uq_case_reference")),
    )
    with op.batch_alter_table("case", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_case_agency_id"), ["agency_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_case_journey_id"), ["journey_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_case_owner_id"), ["owner_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_case_party_id"), ["party_id"], unique=False)

    op.create_table(
        "login_code",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("party_id", sa.Uuid(), nullable=False),
        sa.Column("address_id", sa.Uuid(), nullable=False),
        sa.Column("code_hash", sqlmodel.sql.sqltypes.AutoString(length=128), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("expires_at", hub.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("used_at", hub.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("created_at", hub.db.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["address_id"],
            ["digital_address.id"],
            name=op.f("fk_login_code_address_id_digital_address"),
        ),
        sa.ForeignKeyConstraint(
            ["party_id"], ["party.id"], name=op.f("fk_login_code_party_id_party")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_login_code")),
    )
    with op.batch_alter_table("login_code", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_login_code_party_id"), ["party_id"], unique=False)

    op.create_table(
        "team_membership",
        sa.Column("team_id", sa.Integer(), nullable=False),
        sa.Column("staff_id", sa.Uuid(), nullable=False),
        sa.ForeignKeyConstraint(
            ["staff_id"], ["staff_member.id"], name=op.f("fk_team_membership_staff_id_staff_member")
        ),
        sa.ForeignKeyConstraint(
            ["team_id"], ["team.id"], name=op.f("fk_team_membership_team_id_team")
        ),
        sa.PrimaryKeyConstraint("team_id", "staff_id", name=op.f("pk_team_membership")),
    )
    op.create_table(
        "access_log",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("party_id", sa.Uuid(), nullable=False),
        sa.Column("actor_kind", sqlmodel.sql.sqltypes.AutoString(length=20), nullable=False),
        sa.Column("actor_id", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=True),
        sa.Column("actor_name", sqlmodel.sql.sqltypes.AutoString(length=200), nullable=True),
        sa.Column("agency_id", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=True),
        sa.Column("processing_activity_id", sa.Integer(), nullable=True),
        sa.Column("action", sqlmodel.sql.sqltypes.AutoString(length=20), nullable=False),
        sa.Column("data", sqlmodel.sql.sqltypes.AutoString(length=100), nullable=False),
        sa.Column("case_id", sa.Uuid(), nullable=True),
        sa.Column("request_id", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=True),
        sa.Column("created_at", hub.db.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["agency_id"], ["agency.id"], name=op.f("fk_access_log_agency_id_agency")
        ),
        sa.ForeignKeyConstraint(["case_id"], ["case.id"], name=op.f("fk_access_log_case_id_case")),
        sa.ForeignKeyConstraint(
            ["party_id"], ["party.id"], name=op.f("fk_access_log_party_id_party")
        ),
        sa.ForeignKeyConstraint(
            ["processing_activity_id"],
            ["processing_activity.id"],
            name=op.f("fk_access_log_processing_activity_id_processing_activity"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_access_log")),
    )
    with op.batch_alter_table("access_log", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_access_log_case_id"), ["case_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_access_log_created_at"), ["created_at"], unique=False)
        batch_op.create_index(batch_op.f("ix_access_log_party_id"), ["party_id"], unique=False)

    op.create_table(
        "case_event",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("case_id", sa.Uuid(), nullable=False),
        sa.Column("seq", sa.Integer(), nullable=False),
        sa.Column("kind", sqlmodel.sql.sqltypes.AutoString(length=50), nullable=False),
        sa.Column("audience", sqlmodel.sql.sqltypes.AutoString(length=10), nullable=False),
        sa.Column("actor_kind", sqlmodel.sql.sqltypes.AutoString(length=20), nullable=False),
        sa.Column("actor_id", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=True),
        sa.Column("actor_name", sqlmodel.sql.sqltypes.AutoString(length=200), nullable=True),
        sa.Column("payload", sa.JSON(), nullable=False),
        sa.Column("created_at", hub.db.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["case_id"], ["case.id"], name=op.f("fk_case_event_case_id_case")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_case_event")),
        sa.UniqueConstraint("case_id", "seq", name=op.f("uq_case_event_case_id")),
    )
    with op.batch_alter_table("case_event", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_case_event_case_id"), ["case_id"], unique=False)

    op.create_table(
        "case_participant",
        sa.Column("case_id", sa.Uuid(), nullable=False),
        sa.Column("agency_id", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("added_at", hub.db.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["agency_id"], ["agency.id"], name=op.f("fk_case_participant_agency_id_agency")
        ),
        sa.ForeignKeyConstraint(
            ["case_id"], ["case.id"], name=op.f("fk_case_participant_case_id_case")
        ),
        sa.PrimaryKeyConstraint("case_id", "agency_id", name=op.f("pk_case_participant")),
    )
    op.create_table(
        "message",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("case_id", sa.Uuid(), nullable=True),
        sa.Column("party_id", sa.Uuid(), nullable=True),
        sa.Column("channel", sqlmodel.sql.sqltypes.AutoString(length=20), nullable=False),
        sa.Column("direction", sqlmodel.sql.sqltypes.AutoString(length=10), nullable=False),
        sa.Column("author_kind", sqlmodel.sql.sqltypes.AutoString(length=20), nullable=False),
        sa.Column("author_id", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=True),
        sa.Column("author_name", sqlmodel.sql.sqltypes.AutoString(length=200), nullable=True),
        sa.Column("body", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column("external_id", sqlmodel.sql.sqltypes.AutoString(length=300), nullable=True),
        sa.Column("delivery_status", sqlmodel.sql.sqltypes.AutoString(length=30), nullable=True),
        sa.Column("identified_by", sqlmodel.sql.sqltypes.AutoString(length=50), nullable=True),
        sa.Column("created_at", hub.db.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["case_id"], ["case.id"], name=op.f("fk_message_case_id_case")),
        sa.ForeignKeyConstraint(["party_id"], ["party.id"], name=op.f("fk_message_party_id_party")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_message")),
    )
    with op.batch_alter_table("message", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_message_case_id"), ["case_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_message_external_id"), ["external_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_message_party_id"), ["party_id"], unique=False)

    op.create_table(
        "timer",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("case_id", sa.Uuid(), nullable=True),
        sa.Column("kind", sqlmodel.sql.sqltypes.AutoString(length=50), nullable=False),
        sa.Column("due_at", hub.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("payload", sa.JSON(), nullable=False),
        sa.Column("fired_at", hub.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("cancelled_at", hub.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("created_at", hub.db.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["case_id"], ["case.id"], name=op.f("fk_timer_case_id_case")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_timer")),
    )
    with op.batch_alter_table("timer", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_timer_case_id"), ["case_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_timer_due_at"), ["due_at"], unique=False)

    op.create_table(
        "outbox",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("case_id", sa.Uuid(), nullable=True),
        sa.Column("party_id", sa.Uuid(), nullable=True),
        sa.Column("message_id", sa.Uuid(), nullable=True),
        sa.Column("channel", sqlmodel.sql.sqltypes.AutoString(length=20), nullable=False),
        sa.Column("recipient", sqlmodel.sql.sqltypes.AutoString(length=320), nullable=False),
        sa.Column("template", sqlmodel.sql.sqltypes.AutoString(length=100), nullable=False),
        sa.Column("language", sqlmodel.sql.sqltypes.AutoString(length=5), nullable=False),
        sa.Column("subject", sqlmodel.sql.sqltypes.AutoString(length=300), nullable=False),
        sa.Column("body", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column("status", sqlmodel.sql.sqltypes.AutoString(length=30), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("next_attempt_at", hub.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("claimed_until", hub.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("provider", sqlmodel.sql.sqltypes.AutoString(length=30), nullable=True),
        sa.Column("provider_id", sqlmodel.sql.sqltypes.AutoString(length=200), nullable=True),
        sa.Column("last_error", sqlmodel.sql.sqltypes.AutoString(length=1000), nullable=True),
        sa.Column("created_at", hub.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", hub.db.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["case_id"], ["case.id"], name=op.f("fk_outbox_case_id_case")),
        sa.ForeignKeyConstraint(
            ["message_id"], ["message.id"], name=op.f("fk_outbox_message_id_message")
        ),
        sa.ForeignKeyConstraint(["party_id"], ["party.id"], name=op.f("fk_outbox_party_id_party")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_outbox")),
    )
    with op.batch_alter_table("outbox", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_outbox_case_id"), ["case_id"], unique=False)
        batch_op.create_index(
            batch_op.f("ix_outbox_next_attempt_at"), ["next_attempt_at"], unique=False
        )
        batch_op.create_index(batch_op.f("ix_outbox_party_id"), ["party_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_outbox_provider_id"), ["provider_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_outbox_status"), ["status"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("outbox", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_outbox_status"))
        batch_op.drop_index(batch_op.f("ix_outbox_provider_id"))
        batch_op.drop_index(batch_op.f("ix_outbox_party_id"))
        batch_op.drop_index(batch_op.f("ix_outbox_next_attempt_at"))
        batch_op.drop_index(batch_op.f("ix_outbox_case_id"))

    op.drop_table("outbox")
    with op.batch_alter_table("timer", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_timer_due_at"))
        batch_op.drop_index(batch_op.f("ix_timer_case_id"))

    op.drop_table("timer")
    with op.batch_alter_table("message", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_message_party_id"))
        batch_op.drop_index(batch_op.f("ix_message_external_id"))
        batch_op.drop_index(batch_op.f("ix_message_case_id"))

    op.drop_table("message")
    op.drop_table("case_participant")
    with op.batch_alter_table("case_event", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_case_event_case_id"))

    op.drop_table("case_event")
    with op.batch_alter_table("access_log", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_access_log_party_id"))
        batch_op.drop_index(batch_op.f("ix_access_log_created_at"))
        batch_op.drop_index(batch_op.f("ix_access_log_case_id"))

    op.drop_table("access_log")
    op.drop_table("team_membership")
    with op.batch_alter_table("login_code", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_login_code_party_id"))

    op.drop_table("login_code")
    with op.batch_alter_table("case", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_case_party_id"))
        batch_op.drop_index(batch_op.f("ix_case_owner_id"))
        batch_op.drop_index(batch_op.f("ix_case_journey_id"))
        batch_op.drop_index(batch_op.f("ix_case_agency_id"))

    op.drop_table("case")
    with op.batch_alter_table("team", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_team_agency_id"))

    op.drop_table("team")
    with op.batch_alter_table("staff_member", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_staff_member_agency_id"))

    op.drop_table("staff_member")
    with op.batch_alter_table("processing_activity", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_processing_activity_agency_id"))

    op.drop_table("processing_activity")
    with op.batch_alter_table("mandate", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_mandate_representative_id"))
        batch_op.drop_index(batch_op.f("ix_mandate_party_id"))

    op.drop_table("mandate")
    with op.batch_alter_table("digital_address", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_digital_address_value"))
        batch_op.drop_index(batch_op.f("ix_digital_address_party_id"))

    op.drop_table("digital_address")
    with op.batch_alter_table("api_key", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_api_key_agency_id"))

    op.drop_table("api_key")
    op.drop_table("reference_counter")
    op.drop_table("party")
    with op.batch_alter_table("login_session", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_login_session_subject_id"))

    op.drop_table("login_session")
    op.drop_table("agency")
