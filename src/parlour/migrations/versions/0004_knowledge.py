"""Knowledge bases, documents and segments (+ full-text index); citations on messages.

Full text: an FTS5 table kept in step by triggers on SQLite; a generated tsvector column with a
GIN index on PostgreSQL.

Revision ID: 0004
Revises: 0003
"""
import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

SQLITE_FTS = [
    "CREATE VIRTUAL TABLE knowledge_segments_fts USING fts5("
    "content, title, content='knowledge_segments', content_rowid='rowid', "
    "tokenize='porter unicode61')",
    "CREATE TRIGGER knowledge_segments_ai AFTER INSERT ON knowledge_segments BEGIN "
    "INSERT INTO knowledge_segments_fts(rowid, content, title) "
    "VALUES (new.rowid, new.content, new.title); END",
    "CREATE TRIGGER knowledge_segments_ad AFTER DELETE ON knowledge_segments BEGIN "
    "INSERT INTO knowledge_segments_fts(knowledge_segments_fts, rowid, content, title) "
    "VALUES ('delete', old.rowid, old.content, old.title); END",
    "CREATE TRIGGER knowledge_segments_au AFTER UPDATE OF content, title ON knowledge_segments "
    "BEGIN INSERT INTO knowledge_segments_fts(knowledge_segments_fts, rowid, content, title) "
    "VALUES ('delete', old.rowid, old.content, old.title); "
    "INSERT INTO knowledge_segments_fts(rowid, content, title) "
    "VALUES (new.rowid, new.content, new.title); END",
]


def upgrade() -> None:
    op.create_table(
        "knowledge_bases",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("name", sa.String(length=255), nullable=False),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("embedding_model", sa.String(length=255), nullable=False),
        sa.Column("dim", sa.Integer(), nullable=False),
        sa.Column("chunk_tokens", sa.Integer(), nullable=False),
        sa.Column("chunk_overlap", sa.Integer(), nullable=False),
        sa.Column("retrieval", sa.JSON(), nullable=False),
        sa.Column("index_version", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("updated_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("name"),
    )
    op.create_table(
        "knowledge_documents",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("kb_id", sa.String(length=36), nullable=False),
        sa.Column("name", sa.String(length=1024), nullable=False),
        sa.Column("source", sa.String(length=32), nullable=False),
        sa.Column("content_hash", sa.String(length=64), nullable=False),
        sa.Column("status", sa.String(length=32), nullable=False),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("word_count", sa.Integer(), nullable=False),
        sa.Column("tokens", sa.Integer(), nullable=False),
        sa.Column("segment_count", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("updated_at", sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(["kb_id"], ["knowledge_bases.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ux_knowledge_documents_name", "knowledge_documents", ["kb_id", "name"],
                    unique=True)
    op.create_table(
        "knowledge_segments",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("kb_id", sa.String(length=36), nullable=False),
        sa.Column("document_id", sa.String(length=36), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("title", sa.Text(), nullable=False),
        sa.Column("content", sa.Text(), nullable=False),
        sa.Column("content_hash", sa.String(length=64), nullable=False),
        sa.Column("word_count", sa.Integer(), nullable=False),
        sa.Column("tokens", sa.Integer(), nullable=False),
        sa.Column("hit_count", sa.Integer(), nullable=False),
        sa.Column("vector", sa.LargeBinary(), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(["kb_id"], ["knowledge_bases.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["document_id"], ["knowledge_documents.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_knowledge_segments_kb", "knowledge_segments", ["kb_id"])
    op.create_index("ix_knowledge_segments_document", "knowledge_segments",
                    ["document_id", "position"])
    with op.batch_alter_table("messages") as batch:
        batch.add_column(sa.Column("retriever_resources", sa.JSON(), nullable=True))
    if op.get_bind().dialect.name == "sqlite":
        for statement in SQLITE_FTS:
            op.execute(statement)
    else:
        op.execute(
            "ALTER TABLE knowledge_segments ADD COLUMN tsv tsvector GENERATED ALWAYS AS "
            "(to_tsvector('english', title || ' ' || content)) STORED"
        )
        op.execute("CREATE INDEX ix_knowledge_segments_tsv ON knowledge_segments USING gin (tsv)")


def downgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":
        for name in ("ai", "ad", "au"):
            op.execute(f"DROP TRIGGER IF EXISTS knowledge_segments_{name}")
        op.execute("DROP TABLE IF EXISTS knowledge_segments_fts")
    with op.batch_alter_table("messages") as batch:
        batch.drop_column("retriever_resources")
    op.drop_table("knowledge_segments")
    op.drop_table("knowledge_documents")
    op.drop_table("knowledge_bases")
