"""Knowledge bases, documents and segments as Dify's Knowledge API shows them."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from parlour.services.indexing import ACTIVE
from parlour.storage.models import KnowledgeBase, KnowledgeDocument, KnowledgeSegment, epoch

DOC_FORM = "text_model"
DISPLAY = {"waiting": "queuing", "completed": "available", "error": "error"}


def _time(value: datetime | None) -> int | None:
    return epoch(value) if value is not None else None


def stage(doc: KnowledgeDocument) -> str:
    """The document's indexing status; ``completed`` only once its job has wrapped up."""
    if doc.status == "completed" and doc.worker:
        return "indexing"
    return doc.status


def retrieval_model(kb: KnowledgeBase) -> dict[str, Any]:
    r = kb.retrieval or {}
    threshold = r.get("score_threshold")
    weights = r.get("weights") or None
    return {
        "search_method": r.get("search_method") or "semantic_search",
        "reranking_enable": False,
        "reranking_mode": None,
        "reranking_model": {"reranking_provider_name": "", "reranking_model_name": ""},
        "weights": weights if isinstance(weights, dict) else None,
        "top_k": int(r.get("top_k") or 4),
        "score_threshold_enabled": threshold is not None,
        "score_threshold": threshold,
    }


def dataset_dict(kb: KnowledgeBase, documents: int = 0, words: int = 0) -> dict[str, Any]:
    provider, _, model = kb.embedding_model.partition(":")
    return {
        "id": kb.id,
        "name": kb.name,
        "description": kb.description,
        "provider": "vendor",
        "permission": kb.permission,
        "data_source_type": "upload_file" if documents else None,
        "indexing_technique": kb.indexing_technique,
        "app_count": 0,
        "document_count": documents,
        "word_count": words,
        "created_by": "",
        "author_name": None,
        "created_at": epoch(kb.created_at),
        "updated_by": None,
        "updated_at": epoch(kb.updated_at),
        "embedding_model": model or kb.embedding_model,
        "embedding_model_provider": provider if model else "",
        "embedding_available": True,
        "retrieval_model_dict": retrieval_model(kb),
        "summary_index_setting": None,
        "tags": [],
        "doc_form": DOC_FORM,
        "external_knowledge_info": None,
        "external_retrieval_model": None,
        "doc_metadata": [],
        "built_in_field_enabled": False,
        "pipeline_id": None,
        "runtime_mode": "general",
        "chunk_structure": None,
        "icon_info": None,
        "is_published": False,
        "total_documents": documents,
        "total_available_documents": documents,
        "enable_api": True,
        "is_multimodal": False,
    }


def document_dict(doc: KnowledgeDocument, hits: int = 0) -> dict[str, Any]:
    status = stage(doc)
    status = "indexing" if status in ACTIVE[1:] else status
    return {
        "id": doc.id,
        "position": doc.position,
        "data_source_type": "upload_file",
        "data_source_info": {"upload_file_id": doc.id},
        "data_source_detail_dict": {"upload_file": {"id": doc.id, "name": doc.name}},
        "dataset_process_rule_id": (doc.process_rule or {}).get("id"),
        "name": doc.name,
        "created_from": "api",
        "created_by": "",
        "created_at": epoch(doc.created_at),
        "tokens": doc.tokens,
        "indexing_status": status,
        "error": doc.error,
        "enabled": True,
        "disabled_at": None,
        "disabled_by": None,
        "archived": False,
        "display_status": DISPLAY.get(status, "indexing"),
        "word_count": doc.word_count,
        "hit_count": hits,
        "doc_form": DOC_FORM,
        "doc_metadata": [],
        "summary_index_status": None,
        "need_summary": False,
    }


def rule_dict(kb: KnowledgeBase, rule: dict[str, Any] | None) -> dict[str, Any]:
    """A stored process rule as Dify shows one; automatic shows the base's own settings."""
    if not rule:
        return {}
    rules = rule.get("rules") or {}
    if rule.get("mode") != "custom":
        rules = {
            "pre_processing_rules": [
                {"id": "remove_extra_spaces", "enabled": False},
                {"id": "remove_urls_emails", "enabled": False},
            ],
            "segmentation": {
                "separator": "\\n\\n",
                "max_tokens": kb.chunk_tokens,
                "chunk_overlap": kb.chunk_overlap,
            },
        }
    return {"id": rule.get("id"), "dataset_id": kb.id, "mode": rule.get("mode"), "rules": rules}


def detail_dict(
    kb: KnowledgeBase, doc: KnowledgeDocument, latest: dict[str, Any] | None, hits: int
) -> dict[str, Any]:
    """GET …/documents/{document_id}: the listing's fields, the process rules (the base's
    latest and the document's own), timings and segment statistics."""
    out = document_dict(doc, hits)
    done = out["indexing_status"] == "completed"
    started, finished = doc.processing_started_at, doc.completed_at
    latency = (finished - started).total_seconds() if done and started and finished else None
    out.update(
        dataset_process_rule=rule_dict(kb, latest),
        document_process_rule=rule_dict(kb, doc.process_rule),
        completed_at=_time(doc.completed_at) if done else None,
        updated_at=_time(doc.updated_at),
        indexing_latency=latency,
        doc_type=None,
        segment_count=doc.segment_count,
        average_segment_length=doc.word_count // doc.segment_count if doc.segment_count else 0,
        doc_language="English",
    )
    return out


def status_dict(doc: KnowledgeDocument) -> dict[str, Any]:
    """One entry of GET …/documents/{batch}/indexing-status."""
    status = stage(doc)
    done = status == "completed"
    total = doc.segment_count if done else doc.total_segments
    return {
        "id": doc.id,
        "indexing_status": status,
        "processing_started_at": _time(doc.processing_started_at),
        "parsing_completed_at": _time(doc.parsing_completed_at),
        "cleaning_completed_at": _time(doc.parsing_completed_at),
        "splitting_completed_at": _time(doc.splitting_completed_at),
        "completed_at": _time(doc.completed_at or (doc.updated_at if done else None)),
        "paused_at": None,
        "error": doc.error,
        "stopped_at": _time(doc.completed_at) if status == "error" else None,
        "completed_segments": total if done else doc.completed_segments,
        "total_segments": total,
    }


def segment_dict(seg: KnowledgeSegment) -> dict[str, Any]:
    created = epoch(seg.created_at)
    return {
        "id": seg.id,
        "position": seg.position,
        "document_id": seg.document_id,
        "content": seg.content,
        "sign_content": seg.content,
        "answer": None,
        "word_count": seg.word_count,
        "tokens": seg.tokens,
        "keywords": [],
        "index_node_id": seg.id,
        "index_node_hash": seg.content_hash,
        "hit_count": seg.hit_count,
        "enabled": True,
        "disabled_at": None,
        "disabled_by": None,
        "status": "completed",
        "created_by": "",
        "created_at": created,
        "updated_at": created,
        "updated_by": None,
        "indexing_at": created,
        "completed_at": created,
        "error": None,
        "stopped_at": None,
        "child_chunks": [],
        "attachments": [],
        "summary": None,
    }


def record_dict(seg: KnowledgeSegment, document_name: str, score: float) -> dict[str, Any]:
    """One record of POST …/retrieve."""
    segment = segment_dict(seg)
    segment["document"] = {
        "id": seg.document_id,
        "data_source_type": "upload_file",
        "name": document_name,
        "doc_type": None,
        "doc_metadata": None,
    }
    return {
        "segment": segment,
        "child_chunks": None,
        "score": score,
        "tsne_position": None,
        "files": None,
    }
