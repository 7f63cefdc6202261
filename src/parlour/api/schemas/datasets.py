"""Wire models of the Knowledge API: request bodies (validated) and responses (documented)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator


class VectorSetting(BaseModel):
    model_config = ConfigDict(extra="allow")

    vector_weight: float = Field(ge=0, le=1)


class KeywordSetting(BaseModel):
    model_config = ConfigDict(extra="allow")

    keyword_weight: float = Field(ge=0, le=1)


class Weights(BaseModel):
    model_config = ConfigDict(extra="allow")

    vector_setting: VectorSetting | None = None
    keyword_setting: KeywordSetting | None = None


class RetrievalModel(BaseModel):
    model_config = ConfigDict(extra="allow")

    search_method: (
        Literal["keyword_search", "semantic_search", "full_text_search", "hybrid_search"] | None
    ) = None
    top_k: int | None = Field(default=None, ge=1, le=100)
    score_threshold_enabled: bool | None = None
    score_threshold: float | None = None
    reranking_enable: bool | None = None
    weights: Weights | None = None


class DatasetBody(BaseModel):
    name: str = Field(min_length=1, max_length=40)
    description: str = Field(default="", max_length=400)
    indexing_technique: Literal["high_quality", "economy"] | None = None
    permission: Literal["only_me", "all_team_members", "partial_members"] | None = None
    provider: Literal["vendor"] = "vendor"
    retrieval_model: RetrievalModel | None = None
    embedding_model: str | None = None
    embedding_model_provider: str | None = None

    @field_validator("name")
    @classmethod
    def _named(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("name must not be blank")
        return value.strip()

    @field_validator("description", mode="before")
    @classmethod
    def _described(cls, value: Any) -> Any:
        return "" if value is None else value


class DatasetUpdateBody(BaseModel):
    """PATCH /datasets/{id}: every field optional; ``name`` and ``description`` as on create."""

    name: str | None = Field(default=None, min_length=1, max_length=40)
    description: str | None = Field(default=None, max_length=400)
    indexing_technique: Literal["high_quality", "economy"] | None = None
    permission: Literal["only_me", "all_team_members", "partial_members"] | None = None
    retrieval_model: RetrievalModel | None = None
    embedding_model: str | None = None
    embedding_model_provider: str | None = None
    partial_member_list: list[Any] | None = None
    external_retrieval_model: dict[str, Any] | None = None
    external_knowledge_id: str | None = None
    external_knowledge_api_id: str | None = None

    @field_validator("name", mode="before")
    @classmethod
    def _named(cls, value: Any) -> Any:
        if value is None or (isinstance(value, str) and not value.strip()):
            raise ValueError("Name must be between 1 to 40 characters.")
        return value.strip() if isinstance(value, str) else value


class TextDocumentBody(BaseModel):
    name: str = Field(min_length=1, max_length=255)
    text: str
    indexing_technique: Literal["high_quality", "economy"] | None = None
    process_rule: Any = None  # checked as Dify does, with its messages
    doc_form: str | None = None
    doc_language: str | None = None


class TextUpdateBody(BaseModel):
    """update-by-text: a new name, new text, or both (with an optional process rule)."""

    name: str | None = Field(default=None, min_length=1, max_length=255)
    text: str | None = None
    process_rule: Any = None
    doc_form: str | None = None
    doc_language: str | None = None


class RetrieveBody(BaseModel):
    query: str
    retrieval_model: RetrievalModel | None = None
    external_retrieval_model: dict[str, Any] | None = None


class Dataset(BaseModel):
    id: str
    name: str
    description: str | None
    provider: str
    permission: str
    data_source_type: str | None
    indexing_technique: str | None
    app_count: int
    document_count: int
    word_count: int
    created_at: int
    updated_at: int
    embedding_model: str | None
    embedding_model_provider: str | None
    retrieval_model_dict: dict[str, Any]
    doc_form: str | None


class DatasetPage(BaseModel):
    data: list[Dataset]
    has_more: bool
    limit: int
    total: int
    page: int


class Document(BaseModel):
    id: str
    position: int
    data_source_type: str
    name: str
    created_from: str
    created_at: int
    tokens: int
    indexing_status: str
    error: str | None
    enabled: bool
    archived: bool
    display_status: str
    word_count: int
    hit_count: int
    doc_form: str


class ProcessRule(BaseModel):
    id: str
    dataset_id: str
    mode: str
    rules: dict[str, Any]


class DocumentDetail(Document):
    dataset_process_rule_id: str | None
    dataset_process_rule: ProcessRule | dict[str, Any]
    document_process_rule: ProcessRule | dict[str, Any]
    completed_at: int | None
    updated_at: int | None
    indexing_latency: float | None
    segment_count: int
    average_segment_length: int
    doc_language: str | None


class DocumentCreated(BaseModel):
    document: Document
    batch: str


class DocumentPage(BaseModel):
    data: list[Document]
    has_more: bool
    limit: int
    total: int
    page: int


class IndexingStatus(BaseModel):
    id: str
    indexing_status: Literal["waiting", "parsing", "splitting", "indexing", "completed", "error"]
    processing_started_at: int | None
    parsing_completed_at: int | None
    cleaning_completed_at: int | None
    splitting_completed_at: int | None
    completed_at: int | None
    paused_at: int | None
    error: str | None
    stopped_at: int | None
    completed_segments: int
    total_segments: int


class IndexingStatusList(BaseModel):
    data: list[IndexingStatus]


class Segment(BaseModel):
    id: str
    position: int
    document_id: str
    content: str
    word_count: int
    tokens: int
    keywords: list[str]
    index_node_id: str
    index_node_hash: str
    hit_count: int
    enabled: bool
    status: str
    created_at: int


class SegmentPage(BaseModel):
    data: list[Segment]
    doc_form: str
    has_more: bool
    limit: int
    total: int
    page: int


class RecordDocument(BaseModel):
    id: str
    data_source_type: str
    name: str


class RecordSegment(Segment):
    document: RecordDocument


class Record(BaseModel):
    segment: RecordSegment
    score: float


class RetrieveQuery(BaseModel):
    content: str


class Retrieval(BaseModel):
    query: RetrieveQuery
    records: list[Record]
