"""Channels: conversations, the review queue, documents, the print queue, message details.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-28 18:38:30.469538+00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

import hub.db

revision: str = "0002"
down_revision: str | Sequence[str] | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "inbound_receipt",
        sa.Column("source", sqlmodel.sql.sqltypes.AutoString(length=30), nullable=False),
        sa.Column("external_id", sqlmodel.sql.sqltypes.AutoString(length=300), nullable=False),
        sa.Column("received_at", hub.db.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("source", "external_id", name=op.f("pk_inbound_receipt")),
    )
    op.create_table(
        "conversation",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("case_id", sa.Uuid(), nullable=False),
        sa.Column("party_id", sa.Uuid(), nullable=False),
        sa.Column("agency_id", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("team_id", sa.Integer(), nullable=True),
        sa.Column("staff_id", sa.Uuid(), nullable=True),
        sa.Column("status", sqlmodel.sql.sqltypes.AutoString(length=10), nullable=False),
        sa.Column("reply_channel", sqlmodel.sql.sqltypes.AutoString(length=20), nullable=False),
        sa.Column("waiting_since", hub.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("picked_up_at", hub.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("closed_at", hub.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("created_at", hub.db.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["agency_id"], ["agency.id"], name=op.f("fk_conversation_agency_id_agency")
        ),
        sa.ForeignKeyConstraint(
            ["case_id"], ["case.id"], name=op.f("fk_conversation_case_id_case")
        ),
        sa.ForeignKeyConstraint(
            ["party_id"], ["party.id"], name=op.f("fk_conversation_party_id_party")
        ),
        sa.ForeignKeyConstraint(
            ["staff_id"], ["staff_member.id"], name=op.f("fk_conversation_staff_id_staff_member")
        ),
        sa.ForeignKeyConstraint(
            ["team_id"], ["team.id"], name=op.f("fk_conversation_team_id_team")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_conversation")),
    )
    with op.batch_alter_table("conversation", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_conversation_agency_id"), ["agency_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_conversation_case_id"), ["case_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_conversation_party_id"), ["party_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_conversation_staff_id"), ["staff_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_conversation_status"), ["status"], unique=False)

    op.create_table(
        "review_item",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("channel", sqlmodel.sql.sqltypes.AutoString(length=20), nullable=False),
        sa.Column("sender", sqlmodel.sql.sqltypes.AutoString(length=320), nullable=False),
        sa.Column("subject", sqlmodel.sql.sqltypes.AutoString(length=300), nullable=True),
        sa.Column("body", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column("original_body", sqlmodel.sql.sqltypes.AutoString(), nullable=True),
        sa.Column("external_id", sqlmodel.sql.sqltypes.AutoString(length=300), nullable=True),
        sa.Column("reason", sqlmodel.sql.sqltypes.AutoString(length=50), nullable=False),
        sa.Column("meta", sa.JSON(), nullable=False),
        sa.Column("status", sqlmodel.sql.sqltypes.AutoString(length=10), nullable=False),
        sa.Column("party_id", sa.Uuid(), nullable=True),
        sa.Column("case_id", sa.Uuid(), nullable=True),
        sa.Column("message_id", sa.Uuid(), nullable=True),
        sa.Column("resolved_by", sa.Uuid(), nullable=True),
        sa.Column("resolved_at", hub.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("received_at", hub.db.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["case_id"], ["case.id"], name=op.f("fk_review_item_case_id_case")),
        sa.ForeignKeyConstraint(
            ["message_id"], ["message.id"], name=op.f("fk_review_item_message_id_message")
        ),
        sa.ForeignKeyConstraint(
            ["party_id"], ["party.id"], name=op.f("fk_review_item_party_id_party")
        ),
        sa.ForeignKeyConstraint(
            ["resolved_by"],
            ["staff_member.id"],
            name=op.f("fk_review_item_resolved_by_staff_member"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_review_item")),
    )
    with op.batch_alter_table("review_item", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_review_item_external_id"), ["external_id"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_review_item_received_at"), ["received_at"], unique=False
        )
        batch_op.create_index(batch_op.f("ix_review_item_status"), ["status"], unique=False)

    op.create_table(
        "document",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("case_id", sa.Uuid(), nullable=True),
        sa.Column("party_id", sa.Uuid(), nullable=True),
        sa.Column("message_id", sa.Uuid(), nullable=True),
        sa.Column("review_item_id", sa.Uuid(), nullable=True),
        sa.Column("filename", sqlmodel.sql.sqltypes.AutoString(length=255), nullable=False),
        sa.Column("content_type", sqlmodel.sql.sqltypes.AutoString(length=100), nullable=False),
        sa.Column("size", sa.Integer(), nullable=False),
        sa.Column("sha256", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("storage_key", sqlmodel.sql.sqltypes.AutoString(length=200), nullable=False),
        sa.Column("source", sqlmodel.sql.sqltypes.AutoString(length=20), nullable=False),
        sa.Column("uploaded_by_kind", sqlmodel.sql.sqltypes.AutoString(length=20), nullable=False),
        sa.Column("uploaded_by_id", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=True),
        sa.Column("created_at", hub.db.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["case_id"], ["case.id"], name=op.f("fk_document_case_id_case")),
        sa.ForeignKeyConstraint(
            ["message_id"], ["message.id"], name=op.f("fk_document_message_id_message")
        ),
        sa.ForeignKeyConstraint(
            ["party_id"], ["party.id"], name=op.f("fk_document_party_id_party")
        ),
        sa.ForeignKeyConstraint(
            ["review_item_id"],
            ["review_item.id"],
            name=op.f("fk_document_review_item_id_review_item"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_document")),
    )
    with op.batch_alter_table("document", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_document_case_id"), ["case_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_document_message_id"), ["message_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_document_party_id"), ["party_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_document_sha256"), ["sha256"], unique=False)

    op.create_table(
        "print_job",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("outbox_id", sa.Uuid(), nullable=False),
        sa.Column("agency_id", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=True),
        sa.Column("case_id", sa.Uuid(), nullable=True),
        sa.Column("document_id", sa.Uuid(), nullable=False),
        sa.Column("recipient", sqlmodel.sql.sqltypes.AutoString(length=500), nullable=False),
        sa.Column("status", sqlmodel.sql.sqltypes.AutoString(length=10), nullable=False),
        sa.Column("collected_at", hub.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("posted_at", hub.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("created_at", hub.db.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["agency_id"], ["agency.id"], name=op.f("fk_print_job_agency_id_agency")
        ),
        sa.ForeignKeyConstraint(["case_id"], ["case.id"], name=op.f("fk_print_job_case_id_case")),
        sa.ForeignKeyConstraint(
            ["document_id"], ["document.id"], name=op.f("fk_print_job_document_id_document")
        ),
        sa.ForeignKeyConstraint(
            ["outbox_id"], ["outbox.id"], name=op.f("fk_print_job_outbox_id_outbox")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_print_job")),
        sa.UniqueConstraint("outbox_id", name=op.f("uq_print_job_outbox_id")),
    )
    with op.batch_alter_table("print_job", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_print_job_agency_id"), ["agency_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_print_job_case_id"), ["case_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_print_job_status"), ["status"], unique=False)

    with op.batch_alter_table("digital_address", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("opted_out_at", hub.db.UTCDateTime(timezone=True), nullable=True)
        )

    with op.batch_alter_table("message", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("subject", sqlmodel.sql.sqltypes.AutoString(length=300), nullable=True)
        )
        batch_op.add_column(
            sa.Column("original_body", sqlmodel.sql.sqltypes.AutoString(), nullable=True)
        )
        batch_op.add_column(sa.Column("conversation_id", sa.Uuid(), nullable=True))
        batch_op.add_column(sa.Column("meta", sa.JSON(), nullable=False, server_default="{}"))
        batch_op.create_index(
            batch_op.f("ix_message_conversation_id"), ["conversation_id"], unique=False
        )
        batch_op.create_foreign_key(
            batch_op.f("fk_message_conversation_id_conversation"),
            "conversation",
            ["conversation_id"],
            ["id"],
        )

    with op.batch_alter_table("outbox", schema=None) as batch_op:
        batch_op.add_column(sa.Column("html", sqlmodel.sql.sqltypes.AutoString(), nullable=True))
        batch_op.add_column(sa.Column("meta", sa.JSON(), nullable=False, server_default="{}"))

    with op.batch_alter_table("party", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("postal_address", sqlmodel.sql.sqltypes.AutoString(length=500), nullable=True)
        )


def downgrade() -> None:
    with op.batch_alter_table("party", schema=None) as batch_op:
        batch_op.drop_column("postal_address")

    with op.batch_alter_table("outbox", schema=None) as batch_op:
        batch_op.drop_column("meta")
        batch_op.drop_column("html")

    with op.batch_alter_table("message", schema=None) as batch_op:
        batch_op.drop_constraint(
            batch_op.f("fk_message_conversation_id_conversation"), type_="foreignkey"
        )
        batch_op.drop_index(batch_op.f("ix_message_conversation_id"))
        batch_op.drop_column("meta")
        batch_op.drop_column("conversation_id")
        batch_op.drop_column("original_body")
        batch_op.drop_column("subject")

    with op.batch_alter_table("digital_address", schema=None) as batch_op:
        batch_op.drop_column("opted_out_at")

    with op.batch_alter_table("print_job", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_print_job_status"))
        batch_op.drop_index(batch_op.f("ix_print_job_case_id"))
        batch_op.drop_index(batch_op.f("ix_print_job_agency_id"))

    op.drop_table("print_job")
    with op.batch_alter_table("document", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_document_sha256"))
        batch_op.drop_index(batch_op.f("ix_document_party_id"))
        batch_op.drop_index(batch_op.f("ix_document_message_id"))
        batch_op.drop_index(batch_op.f("ix_document_case_id"))

    op.drop_table("document")
    with op.batch_alter_table("review_item", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_review_item_status"))
        batch_op.drop_index(batch_op.f("ix_review_item_received_at"))
        batch_op.drop_index(batch_op.f("ix_review_item_external_id"))

    op.drop_table("review_item")
    with op.batch_alter_table("conversation", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_conversation_status"))
        batch_op.drop_index(batch_op.f("ix_conversation_staff_id"))
        batch_op.drop_index(batch_op.f("ix_conversation_party_id"))
        batch_op.drop_index(batch_op.f("ix_conversation_case_id"))
        batch_op.drop_index(batch_op.f("ix_conversation_agency_id"))

    op.drop_table("conversation")
    op.drop_table("inbound_receipt")
