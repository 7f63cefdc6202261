"""Uploaded files and files attached to messages; annotations, annotation reply and its jobs.

Revision ID: 0005
Revises: 0004
"""
import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def _app_fk() -> sa.ForeignKeyConstraint:
    return sa.ForeignKeyConstraint(["app_id"], ["apps.id"], ondelete="CASCADE")


def upgrade() -> None:
    op.create_table(
        "upload_files",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("app_id", sa.String(length=36), nullable=False),
        sa.Column("end_user_id", sa.String(length=36), nullable=False),
        sa.Column("name", sa.String(length=255), nullable=False),
        sa.Column("size", sa.Integer(), nullable=False),
        sa.Column("extension", sa.String(length=64), nullable=False),
        sa.Column("mime_type", sa.String(length=255), nullable=False),
        sa.Column("key", sa.String(length=255), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        _app_fk(),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_upload_files_app_created", "upload_files", ["app_id", "created_at"])
    op.create_table(
        "message_files",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("message_id", sa.String(length=36), nullable=False),
        sa.Column("app_id", sa.String(length=36), nullable=False),
        sa.Column("type", sa.String(length=32), nullable=False),
        sa.Column("transfer_method", sa.String(length=32), nullable=False),
        sa.Column("url", sa.Text(), nullable=True),
        sa.Column("upload_file_id", sa.String(length=36), nullable=True),
        sa.Column("belongs_to", sa.String(length=16), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(["message_id"], ["messages.id"], ondelete="CASCADE"),
        _app_fk(),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_message_files_message", "message_files", ["message_id"])
    op.create_index("ix_message_files_upload", "message_files", ["upload_file_id"])
    op.create_table(
        "annotations",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("app_id", sa.String(length=36), nullable=False),
        sa.Column("question", sa.Text(), nullable=False),
        sa.Column("answer", sa.Text(), nullable=False),
        sa.Column("hit_count", sa.Integer(), nullable=False),
        sa.Column("vector", sa.LargeBinary(), nullable=True),
        sa.Column("embedding_model", sa.String(length=255), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("updated_at", sa.DateTime(), nullable=False),
        _app_fk(),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_annotations_app_created", "annotations", ["app_id", "created_at", "id"])
    op.create_table(
        "annotation_settings",
        sa.Column("app_id", sa.String(length=36), nullable=False),
        sa.Column("score_threshold", sa.Float(), nullable=False),
        sa.Column("embedding_model", sa.String(length=255), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("updated_at", sa.DateTime(), nullable=False),
        _app_fk(),
        sa.PrimaryKeyConstraint("app_id"),
    )
    op.create_table(
        "annotation_jobs",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("app_id", sa.String(length=36), nullable=False),
        sa.Column("action", sa.String(length=16), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("error", sa.Text(), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("updated_at", sa.DateTime(), nullable=False),
        _app_fk(),
        sa.PrimaryKeyConstraint("id"),
    )


def downgrade() -> None:
    for table in ("annotation_jobs", "annotation_settings", "annotations", "message_files",
                  "upload_files"):
        op.drop_table(table)
