"""ORM tables: data only. Ids are UUID strings; times are naive UTC with microseconds."""

from __future__ import annotations

import os
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    Text,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column


def utcnow() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)


def new_id() -> str:
    """A random (version 4) UUID as text, as ``str(uuid.uuid4())`` gives, at a third of its
    CPU: three are made for every chat message."""
    raw = bytearray(os.urandom(16))
    raw[6] = (raw[6] & 0x0F) | 0x40
    raw[8] = (raw[8] & 0x3F) | 0x80
    h = raw.hex()
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


def epoch(value: datetime) -> int:
    """A stored (naive UTC) time as Unix seconds, whatever the server's time zone."""
    return int(value.replace(tzinfo=UTC).timestamp())


class Base(DeclarativeBase):
    type_annotation_map = {dict[str, Any]: JSON, datetime: DateTime()}


class App(Base):
    __tablename__ = "apps"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    name: Mapped[str] = mapped_column(String(255))
    description: Mapped[str] = mapped_column(Text, default="")
    mode: Mapped[str] = mapped_column(String(32), default="chat")
    status: Mapped[str] = mapped_column(String(32), default="normal")
    enable_api: Mapped[bool] = mapped_column(default=True)
    config: Mapped[dict[str, Any]] = mapped_column(default=dict)
    max_active_requests: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)


class ApiKey(Base):
    __tablename__ = "api_keys"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    app_id: Mapped[str] = mapped_column(ForeignKey("apps.id", ondelete="CASCADE"), index=True)
    key_hash: Mapped[str] = mapped_column(String(64), unique=True)
    key_hint: Mapped[str] = mapped_column(String(32))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    revoked_at: Mapped[datetime | None] = mapped_column(default=None)


class EndUser(Base):
    __tablename__ = "end_users"
    __table_args__ = (Index("ux_end_users_app_session", "app_id", "session_id", unique=True),)

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    app_id: Mapped[str] = mapped_column(ForeignKey("apps.id", ondelete="CASCADE"))
    session_id: Mapped[str] = mapped_column(String(255))
    type: Mapped[str] = mapped_column(String(32), default="service-api")
    name: Mapped[str | None] = mapped_column(String(255), default=None)
    is_anonymous: Mapped[bool] = mapped_column(default=False)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)


class Conversation(Base):
    __tablename__ = "conversations"
    __table_args__ = (
        Index("ix_conversations_owner_updated", "app_id", "end_user_id", "updated_at", "id"),
        Index("ix_conversations_owner_created", "app_id", "end_user_id", "created_at", "id"),
    )

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    app_id: Mapped[str] = mapped_column(ForeignKey("apps.id", ondelete="CASCADE"))
    end_user_id: Mapped[str] = mapped_column(ForeignKey("end_users.id", ondelete="CASCADE"))
    mode: Mapped[str] = mapped_column(String(32), default="chat")
    name: Mapped[str] = mapped_column(String(255), default="")
    inputs: Mapped[dict[str, Any]] = mapped_column(default=dict)
    introduction: Mapped[str] = mapped_column(Text, default="")
    status: Mapped[str] = mapped_column(String(32), default="normal")
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)


class Message(Base):
    __tablename__ = "messages"
    __table_args__ = (
        Index("ix_messages_conversation_created", "conversation_id", "created_at", "id"),
        Index("ix_messages_status", "status"),
    )

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    app_id: Mapped[str] = mapped_column(ForeignKey("apps.id", ondelete="CASCADE"))
    conversation_id: Mapped[str] = mapped_column(ForeignKey("conversations.id", ondelete="CASCADE"))
    end_user_id: Mapped[str] = mapped_column(String(36))
    task_id: Mapped[str] = mapped_column(String(36))
    model: Mapped[str] = mapped_column(String(255), default="")
    query: Mapped[str] = mapped_column(Text)
    answer: Mapped[str] = mapped_column(Text, default="")
    inputs: Mapped[dict[str, Any]] = mapped_column(default=dict)
    prompt_tokens: Mapped[int] = mapped_column(Integer, default=0)
    completion_tokens: Mapped[int] = mapped_column(Integer, default=0)
    prompt_unit_price: Mapped[str] = mapped_column(String(32), default="0")
    completion_unit_price: Mapped[str] = mapped_column(String(32), default="0")
    price_unit: Mapped[str] = mapped_column(String(32), default="0.001")
    total_price: Mapped[str] = mapped_column(String(32), default="0")
    currency: Mapped[str] = mapped_column(String(8), default="USD")
    latency: Mapped[float] = mapped_column(Float, default=0.0)
    status: Mapped[str] = mapped_column(String(16), default="running")
    error: Mapped[str | None] = mapped_column(Text, default=None)
    worker: Mapped[str | None] = mapped_column(String(255), default=None)
    # citations as sent in message_end (Dify's RetrieverResource objects); null: none
    retriever_resources: Mapped[list[Any] | None] = mapped_column(JSON, default=None)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)


class MessageFeedback(Base):
    """One end user's rating of one message (``from_source`` ``user``; ``admin`` reserved)."""

    __tablename__ = "message_feedbacks"
    __table_args__ = (
        Index(
            "ux_feedbacks_message_user",
            "message_id",
            "from_source",
            "from_end_user_id",
            unique=True,
        ),
        Index("ix_feedbacks_app_created", "app_id", "created_at", "id"),
    )

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    app_id: Mapped[str] = mapped_column(ForeignKey("apps.id", ondelete="CASCADE"))
    conversation_id: Mapped[str] = mapped_column(
        ForeignKey("conversations.id", ondelete="CASCADE"), index=True
    )
    message_id: Mapped[str] = mapped_column(ForeignKey("messages.id", ondelete="CASCADE"))
    rating: Mapped[str] = mapped_column(String(16))
    content: Mapped[str | None] = mapped_column(Text, default=None)
    from_source: Mapped[str] = mapped_column(String(16), default="user")
    from_end_user_id: Mapped[str | None] = mapped_column(String(36), default=None)
    from_account_id: Mapped[str | None] = mapped_column(String(36), default=None)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)


class ConversationVariable(Base):
    """A variable declared by the app, instantiated for one conversation."""

    __tablename__ = "conversation_variables"
    __table_args__ = (
        Index("ux_conversation_variables_name", "conversation_id", "name", unique=True),
    )

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    conversation_id: Mapped[str] = mapped_column(ForeignKey("conversations.id", ondelete="CASCADE"))
    app_id: Mapped[str] = mapped_column(ForeignKey("apps.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(255))
    value_type: Mapped[str] = mapped_column(String(32))
    value: Mapped[dict[str, Any]] = mapped_column(default=dict)  # {"v": <JSON value>}
    description: Mapped[str] = mapped_column(Text, default="")
    position: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)


class KnowledgeBase(Base):
    """A knowledge base (Dify: dataset): documents cut into segments, embedded with one model."""

    __tablename__ = "knowledge_bases"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    name: Mapped[str] = mapped_column(String(255), unique=True)
    description: Mapped[str] = mapped_column(Text, default="")
    embedding_model: Mapped[str] = mapped_column(String(255))
    dim: Mapped[int] = mapped_column(Integer, default=0)
    chunk_tokens: Mapped[int] = mapped_column(Integer, default=240)
    chunk_overlap: Mapped[int] = mapped_column(Integer, default=40)
    # search_method, top_k, score_threshold, weights: Dify's retrieval_model of a dataset
    retrieval: Mapped[dict[str, Any]] = mapped_column(default=dict)
    index_version: Mapped[int] = mapped_column(Integer, default=0)  # bumped on every change
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)
    indexing_technique: Mapped[str] = mapped_column(String(32), default="high_quality")
    permission: Mapped[str] = mapped_column(String(32), default="only_me")


class KnowledgeDocument(Base):
    __tablename__ = "knowledge_documents"
    __table_args__ = (
        Index("ux_knowledge_documents_name", "kb_id", "name", unique=True),
        Index("ix_knowledge_documents_batch", "kb_id", "batch"),
        Index("ix_knowledge_documents_status", "status"),
    )

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    kb_id: Mapped[str] = mapped_column(ForeignKey("knowledge_bases.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(1024))
    source: Mapped[str] = mapped_column(String(32), default="upload_file")  # or "text"
    content_hash: Mapped[str] = mapped_column(String(64), default="")
    # waiting | parsing | splitting | indexing (embedding) | completed | error
    status: Mapped[str] = mapped_column(String(32), default="waiting")
    error: Mapped[str | None] = mapped_column(Text, default=None)
    word_count: Mapped[int] = mapped_column(Integer, default=0)
    tokens: Mapped[int] = mapped_column(Integer, default=0)
    segment_count: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)
    # background indexing (the Knowledge API): the batch it was queued in, the bytes waiting
    # in the blob store, the worker running it, and when each stage ended
    position: Mapped[int] = mapped_column(Integer, default=0)
    batch: Mapped[str] = mapped_column(String(32), default="")
    blob_key: Mapped[str] = mapped_column(String(255), default="")
    worker: Mapped[str | None] = mapped_column(String(255), default=None)
    processing_started_at: Mapped[datetime | None] = mapped_column(default=None)
    parsing_completed_at: Mapped[datetime | None] = mapped_column(default=None)
    splitting_completed_at: Mapped[datetime | None] = mapped_column(default=None)
    completed_at: Mapped[datetime | None] = mapped_column(default=None)
    completed_segments: Mapped[int] = mapped_column(Integer, default=0)
    total_segments: Mapped[int] = mapped_column(Integer, default=0)
    # Dify's process_rule it is cut by ({"id", "mode", "rules"}); None: the base's defaults
    process_rule: Mapped[dict[str, Any] | None] = mapped_column(default=None)


class KnowledgeSegment(Base):
    """One chunk of a document; ``vector`` is float32 bytes of the base's embedding model."""

    __tablename__ = "knowledge_segments"
    __table_args__ = (
        Index("ix_knowledge_segments_kb", "kb_id"),
        Index("ix_knowledge_segments_document", "document_id", "position"),
    )

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    kb_id: Mapped[str] = mapped_column(ForeignKey("knowledge_bases.id", ondelete="CASCADE"))
    document_id: Mapped[str] = mapped_column(
        ForeignKey("knowledge_documents.id", ondelete="CASCADE")
    )
    position: Mapped[int] = mapped_column(Integer)
    title: Mapped[str] = mapped_column(Text, default="")
    content: Mapped[str] = mapped_column(Text)
    content_hash: Mapped[str] = mapped_column(String(64))
    word_count: Mapped[int] = mapped_column(Integer, default=0)
    tokens: Mapped[int] = mapped_column(Integer, default=0)
    hit_count: Mapped[int] = mapped_column(Integer, default=0)
    vector: Mapped[bytes] = mapped_column(LargeBinary)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class DatasetKey(Base):
    """A ``dataset-…`` key of the Knowledge API (stored hashed): every knowledge base, or only
    ``kb_id``'s. App keys and dataset keys never open each other's endpoints."""

    __tablename__ = "dataset_keys"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    kb_id: Mapped[str | None] = mapped_column(
        ForeignKey("knowledge_bases.id", ondelete="CASCADE"), default=None, index=True
    )
    key_hash: Mapped[str] = mapped_column(String(64), unique=True)
    key_hint: Mapped[str] = mapped_column(String(32))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    revoked_at: Mapped[datetime | None] = mapped_column(default=None)


class UploadFile(Base):
    """An uploaded file; its bytes live in the blob store under ``key``."""

    __tablename__ = "upload_files"
    __table_args__ = (Index("ix_upload_files_app_created", "app_id", "created_at"),)

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    app_id: Mapped[str] = mapped_column(ForeignKey("apps.id", ondelete="CASCADE"))
    end_user_id: Mapped[str] = mapped_column(String(36))
    name: Mapped[str] = mapped_column(String(255))
    size: Mapped[int] = mapped_column(Integer)
    extension: Mapped[str] = mapped_column(String(64), default="")
    mime_type: Mapped[str] = mapped_column(String(255), default="")
    key: Mapped[str] = mapped_column(String(255))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class MessageFile(Base):
    """A file attached to a message (``belongs_to`` user: sent with the query)."""

    __tablename__ = "message_files"
    __table_args__ = (
        Index("ix_message_files_message", "message_id"),
        Index("ix_message_files_upload", "upload_file_id"),
    )

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    message_id: Mapped[str] = mapped_column(ForeignKey("messages.id", ondelete="CASCADE"))
    app_id: Mapped[str] = mapped_column(ForeignKey("apps.id", ondelete="CASCADE"))
    type: Mapped[str] = mapped_column(String(32))
    transfer_method: Mapped[str] = mapped_column(String(32))
    url: Mapped[str | None] = mapped_column(Text, default=None)
    upload_file_id: Mapped[str | None] = mapped_column(String(36), default=None)
    belongs_to: Mapped[str] = mapped_column(String(16), default="user")
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class Annotation(Base):
    """A canned answer to a question (Dify: message annotation); ``vector``: its question
    embedded with the app's annotation-reply model, when reply is enabled."""

    __tablename__ = "annotations"
    __table_args__ = (Index("ix_annotations_app_created", "app_id", "created_at", "id"),)

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    app_id: Mapped[str] = mapped_column(ForeignKey("apps.id", ondelete="CASCADE"))
    question: Mapped[str] = mapped_column(Text)
    answer: Mapped[str] = mapped_column(Text)
    hit_count: Mapped[int] = mapped_column(Integer, default=0)
    vector: Mapped[bytes | None] = mapped_column(LargeBinary, default=None)
    embedding_model: Mapped[str] = mapped_column(String(255), default="")
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)


class AnnotationSetting(Base):
    """Annotation reply of one app: on when a row exists."""

    __tablename__ = "annotation_settings"

    app_id: Mapped[str] = mapped_column(ForeignKey("apps.id", ondelete="CASCADE"), primary_key=True)
    score_threshold: Mapped[float] = mapped_column(Float, default=0.9)
    embedding_model: Mapped[str] = mapped_column(String(255))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)


class AnnotationJob(Base):
    """An enable/disable job of annotation reply: waiting → completed | error."""

    __tablename__ = "annotation_jobs"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    app_id: Mapped[str] = mapped_column(ForeignKey("apps.id", ondelete="CASCADE"))
    action: Mapped[str] = mapped_column(String(16))
    status: Mapped[str] = mapped_column(String(16), default="waiting")
    error: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)
