"""Message feedback and per-conversation variables.

Revision ID: 0002
Revises: 0001
"""
import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "message_feedbacks",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("app_id", sa.String(length=36), nullable=False),
        sa.Column("conversation_id", sa.String(length=36), nullable=False),
        sa.Column("message_id", sa.String(length=36), nullable=False),
        sa.Column("rating", sa.String(length=16), nullable=False),
        sa.Column("content", sa.Text(), nullable=True),
        sa.Column("from_source", sa.String(length=16), nullable=False),
        sa.Column("from_end_user_id", sa.String(length=36), nullable=True),
        sa.Column("from_account_id", sa.String(length=36), nullable=True),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("updated_at", sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(["app_id"], ["apps.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["conversation_id"], ["conversations.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["message_id"], ["messages.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("message_feedbacks", schema=None) as batch_op:
        batch_op.create_index(
            "ux_feedbacks_message_user",
            ["message_id", "from_source", "from_end_user_id"],
            unique=True,
        )
        batch_op.create_index("ix_feedbacks_app_created", ["app_id", "created_at", "id"])
        batch_op.create_index(
            batch_op.f("ix_message_feedbacks_conversation_id"), ["conversation_id"]
        )

    op.create_table(
        "conversation_variables",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("conversation_id", sa.String(length=36), nullable=False),
        sa.Column("app_id", sa.String(length=36), nullable=False),
        sa.Column("name", sa.String(length=255), nullable=False),
        sa.Column("value_type", sa.String(length=32), nullable=False),
        sa.Column("value", sa.JSON(), nullable=False),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("updated_at", sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(["app_id"], ["apps.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["conversation_id"], ["conversations.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("conversation_variables", schema=None) as batch_op:
        batch_op.create_index(
            "ux_conversation_variables_name", ["conversation_id", "name"], unique=True
        )


def downgrade() -> None:
    with op.batch_alter_table("conversation_variables", schema=None) as batch_op:
        batch_op.drop_index("ux_conversation_variables_name")
    op.drop_table("conversation_variables")
    with op.batch_alter_table("message_feedbacks", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_message_feedbacks_conversation_id"))
        batch_op.drop_index("ix_feedbacks_app_created")
        batch_op.drop_index("ux_feedbacks_message_user")
    op.drop_table("message_feedbacks")
