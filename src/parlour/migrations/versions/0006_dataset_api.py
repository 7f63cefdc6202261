"""The Knowledge API: dataset keys (hashed), a base's indexing technique and permission, and
the background indexing state of documents.

Revision ID: 0006
Revises: 0005
"""

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

DOCUMENT_COLUMNS = (
    ("position", sa.Integer(), "0"),
    ("batch", sa.String(length=32), "''"),
    ("blob_key", sa.String(length=255), "''"),
    ("completed_segments", sa.Integer(), "0"),
    ("total_segments", sa.Integer(), "0"),
)
DOCUMENT_TIMES = (
    "processing_started_at",
    "parsing_completed_at",
    "splitting_completed_at",
    "completed_at",
)


def upgrade() -> None:
    op.create_table(
        "dataset_keys",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("kb_id", sa.String(length=36), nullable=True),
        sa.Column("key_hash", sa.String(length=64), nullable=False),
        sa.Column("key_hint", sa.String(length=32), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("revoked_at", sa.DateTime(), nullable=True),
        sa.ForeignKeyConstraint(["kb_id"], ["knowledge_bases.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("key_hash"),
    )
    op.create_index("ix_dataset_keys_kb_id", "dataset_keys", ["kb_id"])
    with op.batch_alter_table("knowledge_bases") as batch:
        batch.add_column(
            sa.Column(
                "indexing_technique",
                sa.String(length=32),
                nullable=False,
                server_default="high_quality",
            )
        )
        batch.add_column(
            sa.Column("permission", sa.String(length=32), nullable=False, server_default="only_me")
        )
    with op.batch_alter_table("knowledge_documents") as batch:
        for name, kind, default in DOCUMENT_COLUMNS:
            batch.add_column(sa.Column(name, kind, nullable=False, server_default=sa.text(default)))
        batch.add_column(sa.Column("worker", sa.String(length=255), nullable=True))
        for name in DOCUMENT_TIMES:
            batch.add_column(sa.Column(name, sa.DateTime(), nullable=True))
    op.create_index("ix_knowledge_documents_batch", "knowledge_documents", ["kb_id", "batch"])
    op.create_index("ix_knowledge_documents_status", "knowledge_documents", ["status"])


def downgrade() -> None:
    op.drop_index("ix_knowledge_documents_status", "knowledge_documents")
    op.drop_index("ix_knowledge_documents_batch", "knowledge_documents")
    with op.batch_alter_table("knowledge_documents") as batch:
        for name in (*DOCUMENT_TIMES, "worker", *(c[0] for c in DOCUMENT_COLUMNS)):
            batch.drop_column(name)
    with op.batch_alter_table("knowledge_bases") as batch:
        batch.drop_column("permission")
        batch.drop_column("indexing_technique")
    op.drop_table("dataset_keys")
