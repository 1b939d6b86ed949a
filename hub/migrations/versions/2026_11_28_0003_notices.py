"""Notices: consent topics and consent history, templates, notices and bulk jobs, idempotency keys, webhooks.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-28 19:46:51.397478+00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

import hub.db

revision: str = "0003"
down_revision: str | Sequence[str] | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "idempotency_key",
        sa.Column("agency_id", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("key", sqlmodel.sql.sqltypes.AutoString(length=255), nullable=False),
        sa.Column("request_hash", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("status_code", sa.Integer(), nullable=True),
        sa.Column("response_body", sqlmodel.sql.sqltypes.AutoString(), nullable=True),
        sa.Column("response_headers", sa.JSON(), nullable=False),
        sa.Column("created_at", hub.db.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["agency_id"], ["agency.id"], name=op.f("fk_idempotency_key_agency_id_agency")
        ),
        sa.PrimaryKeyConstraint("agency_id", "key", name=op.f("pk_idempotency_key")),
    )
    with op.batch_alter_table("idempotency_key", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_idempotency_key_created_at"), ["created_at"], unique=False
        )

    op.create_table(
        "notice_template",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("agency_id", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("code", sqlmodel.sql.sqltypes.AutoString(length=100), nullable=False),
        sa.Column("channel", sqlmodel.sql.sqltypes.AutoString(length=20), nullable=False),
        sa.Column("language", sqlmodel.sql.sqltypes.AutoString(length=5), nullable=False),
        sa.Column("subject", sqlmodel.sql.sqltypes.AutoString(length=300), nullable=False),
        sa.Column("body", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column("created_at", hub.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", hub.db.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["agency_id"], ["agency.id"], name=op.f("fk_notice_template_agency_id_agency")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_notice_template")),
        sa.UniqueConstraint(
            "agency_id", "code", "channel", "language", name=op.f("uq_notice_template_agency_id")
        ),
    )
    with op.batch_alter_table("notice_template", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_notice_template_agency_id"), ["agency_id"], unique=False
        )

    op.create_table(
        "webhook_subscription",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("agency_id", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("url", sqlmodel.sql.sqltypes.AutoString(length=2000), nullable=False),
        sa.Column("secret", sqlmodel.sql.sqltypes.AutoString(length=200), nullable=False),
        sa.Column("event_types", sa.JSON(), nullable=False),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("created_at", hub.db.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["agency_id"], ["agency.id"], name=op.f("fk_webhook_subscription_agency_id_agency")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_webhook_subscription")),
    )
    with op.batch_alter_table("webhook_subscription", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_webhook_subscription_agency_id"), ["agency_id"], unique=False
        )

    op.create_table(
        "consent_topic",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("agency_id", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("code", sqlmodel.sql.sqltypes.AutoString(length=100), nullable=False),
        sa.Column("title", sa.JSON(), nullable=False),
        sa.Column("processing_activity_id", sa.Integer(), nullable=False),
        sa.Column("created_at", hub.db.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["agency_id"], ["agency.id"], name=op.f("fk_consent_topic_agency_id_agency")
        ),
        sa.ForeignKeyConstraint(
            ["processing_activity_id"],
            ["processing_activity.id"],
            name=op.f("fk_consent_topic_processing_activity_id_processing_activity"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_consent_topic")),
        sa.UniqueConstraint("agency_id", "code", name=op.f("uq_consent_topic_agency_id")),
    )
    with op.batch_alter_table("consent_topic", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_consent_topic_agency_id"), ["agency_id"], unique=False)

    op.create_table(
        "webhook_delivery",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("subscription_id", sa.Uuid(), nullable=False),
        sa.Column("event", sa.JSON(), nullable=False),
        sa.Column("status", sqlmodel.sql.sqltypes.AutoString(length=30), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("next_attempt_at", hub.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("claimed_until", hub.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("last_error", sqlmodel.sql.sqltypes.AutoString(length=1000), nullable=True),
        sa.Column("created_at", hub.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", hub.db.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["subscription_id"],
            ["webhook_subscription.id"],
            name=op.f("fk_webhook_delivery_subscription_id_webhook_subscription"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_webhook_delivery")),
    )
    with op.batch_alter_table("webhook_delivery", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_webhook_delivery_next_attempt_at"), ["next_attempt_at"], unique=False
        )
        batch_op.create_index(batch_op.f("ix_webhook_delivery_status"), ["status"], unique=False)
        batch_op.create_index(
            batch_op.f("ix_webhook_delivery_subscription_id"), ["subscription_id"], unique=False
        )

    op.create_table(
        "consent",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("party_id", sa.Uuid(), nullable=False),
        sa.Column("topic_id", sa.Integer(), nullable=False),
        sa.Column("granted", sa.Boolean(), nullable=False),
        sa.Column("recorded_by_kind", sqlmodel.sql.sqltypes.AutoString(length=20), nullable=False),
        sa.Column("recorded_by_id", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=True),
        sa.Column("source", sqlmodel.sql.sqltypes.AutoString(length=20), nullable=False),
        sa.Column("recorded_at", hub.db.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["party_id"], ["party.id"], name=op.f("fk_consent_party_id_party")),
        sa.ForeignKeyConstraint(
            ["topic_id"], ["consent_topic.id"], name=op.f("fk_consent_topic_id_consent_topic")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_consent")),
    )
    with op.batch_alter_table("consent", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_consent_party_id"), ["party_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_consent_recorded_at"), ["recorded_at"], unique=False)
        batch_op.create_index(batch_op.f("ix_consent_topic_id"), ["topic_id"], unique=False)

    op.create_table(
        "notice_job",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("agency_id", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("format", sqlmodel.sql.sqltypes.AutoString(length=10), nullable=False),
        sa.Column("document_id", sa.Uuid(), nullable=False),
        sa.Column("status", sqlmodel.sql.sqltypes.AutoString(length=10), nullable=False),
        sa.Column("next_row", sa.Integer(), nullable=False),
        sa.Column("rows", sa.Integer(), nullable=False),
        sa.Column("accepted", sa.Integer(), nullable=False),
        sa.Column("rejected", sa.Integer(), nullable=False),
        sa.Column("not_sent", sa.Integer(), nullable=False),
        sa.Column("errors", sa.JSON(), nullable=False),
        sa.Column("claimed_until", hub.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("created_at", hub.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", hub.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("finished_at", hub.db.UTCDateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["agency_id"], ["agency.id"], name=op.f("fk_notice_job_agency_id_agency")
        ),
        sa.ForeignKeyConstraint(
            ["document_id"], ["document.id"], name=op.f("fk_notice_job_document_id_document")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_notice_job")),
    )
    with op.batch_alter_table("notice_job", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_notice_job_agency_id"), ["agency_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_notice_job_status"), ["status"], unique=False)

    op.create_table(
        "notice",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("agency_id", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("party_id", sa.Uuid(), nullable=True),
        sa.Column("topic_id", sa.Integer(), nullable=False),
        sa.Column("template_code", sqlmodel.sql.sqltypes.AutoString(length=100), nullable=False),
        sa.Column("personalisation", sa.JSON(), nullable=False),
        sa.Column("journey_id", sqlmodel.sql.sqltypes.AutoString(length=100), nullable=True),
        sa.Column("case_id", sa.Uuid(), nullable=True),
        sa.Column("important", sa.Boolean(), nullable=False),
        sa.Column("escalate_after_days", sa.Integer(), nullable=True),
        sa.Column("dedupe_key", sqlmodel.sql.sqltypes.AutoString(length=200), nullable=False),
        sa.Column("status", sqlmodel.sql.sqltypes.AutoString(length=30), nullable=False),
        sa.Column("reason", sqlmodel.sql.sqltypes.AutoString(length=50), nullable=True),
        sa.Column("channel", sqlmodel.sql.sqltypes.AutoString(length=20), nullable=True),
        sa.Column("subject", sqlmodel.sql.sqltypes.AutoString(length=300), nullable=False),
        sa.Column("body", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column("job_id", sa.Uuid(), nullable=True),
        sa.Column("job_row", sa.Integer(), nullable=True),
        sa.Column("read_at", hub.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("escalated_at", hub.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("created_at", hub.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", hub.db.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["agency_id"], ["agency.id"], name=op.f("fk_notice_agency_id_agency")
        ),
        sa.ForeignKeyConstraint(["case_id"], ["case.id"], name=op.f("fk_notice_case_id_case")),
        sa.ForeignKeyConstraint(
            ["job_id"], ["notice_job.id"], name=op.f("fk_notice_job_id_notice_job")
        ),
        sa.ForeignKeyConstraint(["party_id"], ["party.id"], name=op.f("fk_notice_party_id_party")),
        sa.ForeignKeyConstraint(
            ["topic_id"], ["consent_topic.id"], name=op.f("fk_notice_topic_id_consent_topic")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_notice")),
        sa.UniqueConstraint("agency_id", "dedupe_key", name=op.f("uq_notice_agency_id")),
    )
    with op.batch_alter_table("notice", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_notice_agency_id"), ["agency_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_notice_case_id"), ["case_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_notice_created_at"), ["created_at"], unique=False)
        batch_op.create_index(batch_op.f("ix_notice_job_id"), ["job_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_notice_party_id"), ["party_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_notice_status"), ["status"], unique=False)
        batch_op.create_index(batch_op.f("ix_notice_topic_id"), ["topic_id"], unique=False)

    with op.batch_alter_table("outbox", schema=None) as batch_op:
        batch_op.add_column(sa.Column("notice_id", sa.Uuid(), nullable=True))
        batch_op.create_index(batch_op.f("ix_outbox_notice_id"), ["notice_id"], unique=False)
        batch_op.create_foreign_key(
            batch_op.f("fk_outbox_notice_id_notice"), "notice", ["notice_id"], ["id"]
        )


def downgrade() -> None:
    with op.batch_alter_table("outbox", schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f("fk_outbox_notice_id_notice"), type_="foreignkey")
        batch_op.drop_index(batch_op.f("ix_outbox_notice_id"))
        batch_op.drop_column("notice_id")

    with op.batch_alter_table("notice", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_notice_topic_id"))
        batch_op.drop_index(batch_op.f("ix_notice_status"))
        batch_op.drop_index(batch_op.f("ix_notice_party_id"))
        batch_op.drop_index(batch_op.f("ix_notice_job_id"))
        batch_op.drop_index(batch_op.f("ix_notice_created_at"))
        batch_op.drop_index(batch_op.f("ix_notice_case_id"))
        batch_op.drop_index(batch_op.f("ix_notice_agency_id"))

    op.drop_table("notice")
    with op.batch_alter_table("notice_job", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_notice_job_status"))
        batch_op.drop_index(batch_op.f("ix_notice_job_agency_id"))

    op.drop_table("notice_job")
    with op.batch_alter_table("consent", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_consent_topic_id"))
        batch_op.drop_index(batch_op.f("ix_consent_recorded_at"))
        batch_op.drop_index(batch_op.f("ix_consent_party_id"))

    op.drop_table("consent")
    with op.batch_alter_table("webhook_delivery", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_webhook_delivery_subscription_id"))
        batch_op.drop_index(batch_op.f("ix_webhook_delivery_status"))
        batch_op.drop_index(batch_op.f("ix_webhook_delivery_next_attempt_at"))

    op.drop_table("webhook_delivery")
    with op.batch_alter_table("consent_topic", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_consent_topic_agency_id"))

    op.drop_table("consent_topic")
    with op.batch_alter_table("webhook_subscription", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_webhook_subscription_agency_id"))

    op.drop_table("webhook_subscription")
    with op.batch_alter_table("notice_template", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_notice_template_agency_id"))

    op.drop_table("notice_template")
    with op.batch_alter_table("idempotency_key", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_idempotency_key_created_at"))

    op.drop_table("idempotency_key")
