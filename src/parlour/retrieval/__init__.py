"""Retrieval: chunking, embedding, vector and hybrid search. No database, no HTTP."""
