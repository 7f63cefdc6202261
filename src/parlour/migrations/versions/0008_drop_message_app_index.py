"""Drop the index on ``messages.app_id``: no query filters messages by app alone (they are read
by id or by conversation), and every message insert and outcome update paid for it.

Revision ID: 0008
Revises: 0007
"""

from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("messages") as batch:
        batch.drop_index("ix_messages_app_id")


def downgrade() -> None:
    with op.batch_alter_table("messages") as batch:
        batch.create_index("ix_messages_app_id", ["app_id"], unique=False)
