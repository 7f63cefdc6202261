#!/usr/bin/env python3
"""Knowledge speed: indexing with the embedded model, query latency at 100k chunks, memory.

  (a) indexing: ~1,000 chunks of ~200 wordpieces through the Knowledge service on SQLite
      (parse -> chunk -> embed -> store), once per embedded model (the q8 default, then the
      packaged float32 one); the text is Python's own library documentation (pydoc), so the
      run needs no data files
  (b) query latency at 100,000 chunks: NumpyStore exact search (vector search alone, with the
      query embedding, and a whole Knowledge.search on SQLite), and pgvector HNSW in a
      PostgreSQL 16 started from the pgserver wheel, with recall@10 against exact search
      for several ef_search values
  (c) memory: the loaded numpy index and the process RSS it adds; the pgvector table + index

Usage (from the repository root):
  .venv/bin/python bench/knowledge_speed.py             # all, writes bench/KNOWLEDGE.md
  .venv/bin/python bench/knowledge_speed.py --only index --chunks 300 --no-write

Prints a Markdown table and replaces the "Knowledge speed" section of bench/KNOWLEDGE.md.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import importlib
import json
import os
import platform
import pydoc
import statistics
import sys
import tempfile
import time
import uuid
import warnings
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from sqlalchemy import insert, text

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH.parent / "src"))

from parlour.retrieval.chunking import chunk_text  # noqa: E402
from parlour.retrieval.embedders import (  # noqa: E402
    DEFAULT_EMBEDDER,
    MINILM,
    EmbedderRegistry,
)
from parlour.retrieval.vectors import NumpyStore, from_blobs, to_blob  # noqa: E402
from parlour.services.knowledge import Knowledge, SearchOptions  # noqa: E402
from parlour.storage.db import make_engine, make_sessionmaker  # noqa: E402
from parlour.storage.migrate import upgrade  # noqa: E402
from parlour.storage.models import (  # noqa: E402
    KnowledgeBase,
    KnowledgeDocument,
    KnowledgeSegment,
)
from parlour.storage.pgvector import PgVectorStore  # noqa: E402

REPORT = BENCH / "KNOWLEDGE.md"
SAVED = BENCH / "logs" / "knowledge_speed.json"  # the last result of each part
NOTES = """\
- Two embedded models: `local:all-MiniLM-L6-v2-q8`, the default of new knowledge bases, and
  `local:all-MiniLM-L6-v2`, the packaged model as it is, which bases made before keep (a
  base stores its model's name). Indexing is almost all model time (the "embedding" share).
- The packaged "int8" model stores int8 weights (one scale per output channel) but has no
  integer kernels (48 MatMul, no MatMulInteger): onnxruntime folds the weights back to float32
  at load, so it computes in float32. The q8 model is derived from that same pinned file at
  first use (about 1.1 to 1.4 s, once): the 36 MatMul weights are folded to float32 and
  re-quantised by onnxruntime's `quantize_dynamic` (int8, per output channel, symmetric, full
  range; activations uint8, quantised per call), so they run as MatMulInteger; the 12
  attention MatMuls stay float32. It is cached under `$PARLOUR_MODEL_CACHE` (default
  `~/.cache/parlour/models`) in a folder named by the source's sha256, the onnxruntime and
  onnx versions and the recipe, and its sha256 is checked at every load (pinned for
  onnxruntime 1.31.1 + onnx 1.23.2; the derivation is deterministic). Its vectors' cosine to
  the packaged model's: 0.993 on average, 0.984 at worst (286 passages).
- Same day, 16 texts per call as before (2026-11-24 01:43, load 2.16 before, 2.74 after, while
  another session ran tests): 1000 chunks in 42.4 s with the q8 model (CPU 29 ms per chunk,
  starved: CPU time below the wall time of 2 threads) and 47.8 s with the packaged one (48 ms
  per chunk). At 01:04 (load 1.07 before, 1.80 after), the packaged model with 16 per call
  took 34.1 s (47 ms per chunk). CPU per chunk is the steadier figure: 48 -> 29 ms from the
  model, 29 -> 17 ms from embedding one text per call.
- Texts per call: one at a time is the fastest on these 2 cores. 240 chunks, median of 3
  interleaved rounds (load 1.3 to 1.6): q8 3.07 / 2.72 / 3.53 / 4.89 s with 1 / 2 / 4 / 16
  per call, packaged 4.27 / 4.01 / 4.87 / 6.51 s; a 5-round re-run of q8 (load 1.8 to 1.9)
  gave 2.89 / 3.28 / 3.75 s for 1 / 2 / 4. (On the busy machine of 2026-11-23, 4, 8 and 16 measured alike.)
  With one per call there is no padding, and a q8 vector does not depend on the texts it
  was embedded with (activations are quantised per call), as a query's never does.
- Quantisation recipes, 240 chunks, 8 per call, median of 3 rounds: per-channel weights
  4.04 s, per-tensor 3.91 s, per-channel 7-bit (reduce_range) 3.88 s, packaged model 5.49 s:
  alike in speed, so the recipe was picked by quality. Cosine to the packaged model's vectors:
  per channel 0.993, per channel 7-bit 0.990, per tensor 0.936 (0.887 at worst), per tensor
  7-bit 0.782 (0.526 at worst); retrieval quality of each in bench "Retrieval quality".
- onnxruntime settings (q8, 8 per call): 1 intra-op thread 5.78 s against 4.04 s with 2;
  spinning threads 3.90 s for 22% more CPU. Kept: 2 threads, no spinning, full graph
  optimisation, no CPU memory arena. Tokenizing is 0.075 s per 400 chunks (0.2% of the time),
  so it stays on the embedding thread.
- The numpy index is exact and memory-bound (146 MB read per query at 100k x 384). The RSS
  it adds is about twice the matrix: loading it from SQLite passes through the BLOB rows.
- pgvector: one `vector(384)` table per knowledge base with an HNSW index (m 16,
  ef_construction 64, cosine); `hnsw.ef_search` is set once per pooled connection
  (`PgVectorStore.ef_search`, default 100). Timings are per query through SQLAlchemy + asyncpg
  over a Unix socket, so each includes the round trips (BEGIN, SELECT, ROLLBACK).
- HNSW recall depends on the data. These synthetic vectors have a low intrinsic dimension,
  as text embeddings do, and every ef_search reached the recall bar. On vectors whose noise
  spreads over all 384 dimensions (an earlier run of this script), recall@10 was only 0.19 at
  ef_search 40 and 0.40 at 200: check recall on real embeddings before lowering ef_search.
"""
SECTION = "## Knowledge speed"
MODULES = (
    "argparse asyncio.events asyncio.streams collections configparser csv dataclasses datetime "
    "decimal email.message enum functools http.client http.server inspect io itertools json "
    "logging logging.handlers multiprocessing.pool os pathlib pickle re shutil socket sqlite3 "
    "ssl string subprocess tarfile tempfile threading typing unittest urllib.parse "
    "urllib.request xml.etree.ElementTree zipfile"
).split()
QUESTIONS = [
    "how do I parse command line arguments",
    "read a CSV file into dictionaries",
    "what does a dataclass generate",
    "format a date as ISO 8601",
    "how to log to a rotating file",
    "open a TLS connection to a server",
    "run a shell command and capture its output",
    "walk a directory tree",
    "match a regular expression at the start of a string",
    "create a temporary directory that is removed",
    "start a thread and wait for it",
    "serialise an object to JSON",
    "extract files from a zip archive",
    "build a URL query string",
    "send an HTTP request with headers",
    "define an enumeration of constants",
    "cache the result of a function",
    "decimal rounding of money amounts",
    "read an INI configuration file",
    "iterate over pairs of items",
]


def percentile(values: Sequence[float], q: float) -> float:
    return float(np.percentile(np.asarray(values), q))


def ms(seconds: float) -> str:
    return f"{seconds * 1000:.2f} ms"


def rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def clustered(n: int, dim: int, seed: int, latent: int = 32, centres: int = 500) -> np.ndarray:
    """Unit vectors shaped like text embeddings: clusters in a ``latent``-dimensional space,
    projected to ``dim`` dimensions, plus a little noise. Every seed shares the clusters and the
    projection; ``seed`` draws the points (corpus and queries come from the same space)."""
    shape = np.random.default_rng(0)
    middle = shape.normal(size=(centres, latent)).astype(np.float32)
    project = shape.normal(size=(latent, dim)).astype(np.float32)
    rng = np.random.default_rng(seed)
    points = middle[rng.integers(0, centres, n)] + 0.5 * rng.normal(size=(n, latent))
    rows = points.astype(np.float32) @ project + rng.normal(size=(n, dim)).astype(np.float32)
    return rows / np.linalg.norm(rows, axis=1, keepdims=True)


# --- (a) indexing ----------------------------------------------------------------------------


def documents(target: int, spans: Callable[[str], Any], size: int) -> list[tuple[str, bytes]]:
    """Library documentation cut to about ``target`` chunks of at most ``size`` wordpieces."""
    out: list[tuple[str, bytes]] = []
    total = 0
    for name in MODULES:
        raw = pydoc.render_doc(importlib.import_module(name), renderer=pydoc.plaintext)
        chunks = chunk_text(raw, spans, size, 0)[: target - total]
        out.append((f"{name}.txt", "\n\n".join(c.content for c in chunks).encode()))
        total += len(chunks)
        if total >= target:
            break
    return out


class Timed:
    """An embedder wrapper that adds up the time spent in ``embed``."""

    def __init__(self, inner: Any):
        self.inner, self.seconds, self.name = inner, 0.0, inner.name
        self.dim, self.max_tokens, self.spans = inner.dim, inner.max_tokens, inner.spans
        self.batch = getattr(inner, "batch", 16)

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        start = time.perf_counter()
        try:
            return self.inner.embed(texts)  # type: ignore[no-any-return]
        finally:
            self.seconds += time.perf_counter() - start


async def bench_indexing(target: int, work: Path, spec: str, batch: int = 0) -> dict[str, Any]:
    registry = EmbedderRegistry(threads=2)
    start = time.perf_counter()
    model = registry.get(spec)  # the q8 model: derived on the first run, then from the cache
    load = time.perf_counter() - start
    timed = Timed(model)
    timed.batch = batch or timed.batch
    registry.register(timed)  # type: ignore[arg-type]
    docs = documents(target, model.spans, 200)
    engine = make_engine(f"sqlite+aiosqlite:///{work / f'index-{uuid.uuid4().hex}.db'}")
    await upgrade(engine)
    knowledge = Knowledge(make_sessionmaker(engine), registry, NumpyStore(), default_model=spec)
    try:
        await knowledge.create("docs", chunk_tokens=200, chunk_overlap=0)
        rss0 = rss_mb()
        start, cpu = time.perf_counter(), time.process_time()
        results = [await knowledge.add_document("docs", name, data) for name, data in docs]
        total, cpu = time.perf_counter() - start, time.process_time() - cpu
        rss1 = rss_mb()
    finally:
        knowledge.close()
        await engine.dispose()
    chunks = sum(r["segment_count"] for r in results)
    tokens = sum(r["tokens"] for r in results)
    return {
        "model": spec,
        "batch": timed.batch,
        "documents": len(docs),
        "chunks": chunks,
        "tokens_per_chunk": tokens / max(chunks, 1),
        "load": load,
        "total": total,
        "embed": timed.seconds,
        "cpu": cpu,
        "chunks_per_s": chunks / total,
        "rss_added_mb": rss1 - rss0,
    }


# --- (b, c) queries at 100k ------------------------------------------------------------------


async def timings(fn: Callable[[], Awaitable[Any]], n: int) -> list[float]:
    out = []
    for _ in range(n):
        start = time.perf_counter()
        await fn()
        out.append(time.perf_counter() - start)
    return out


async def fill_sqlite(work: Path, vectors: np.ndarray) -> tuple[Any, str]:
    """A knowledge base of ``len(vectors)`` segments (short text, the given vectors)."""
    engine = make_engine(f"sqlite+aiosqlite:///{work / 'query.db'}")
    await upgrade(engine)
    kb_id = await add_rows(make_sessionmaker(engine), vectors)
    return engine, kb_id


async def add_rows(sessions: Any, vectors: np.ndarray) -> str:
    kb_id, doc_id = str(uuid.uuid4()), str(uuid.uuid4())
    async with sessions.begin() as session:
        session.add(
            KnowledgeBase(
                id=kb_id,
                name="big",
                description="",
                embedding_model=MINILM,
                dim=vectors.shape[1],
                chunk_tokens=200,
                chunk_overlap=0,
                retrieval={"search_method": "semantic_search"},
                index_version=1,
            )
        )
        session.add(KnowledgeDocument(id=doc_id, kb_id=kb_id, name="big.txt"))
        await session.flush()
        now = dt.datetime.now(dt.UTC).replace(tzinfo=None)
        for start in range(0, len(vectors), 5000):
            rows = [
                {
                    "id": str(uuid.uuid4()),
                    "kb_id": kb_id,
                    "document_id": doc_id,
                    "position": i,
                    "title": "",
                    "content": f"chunk {i}",
                    "content_hash": str(i),
                    "word_count": 2,
                    "tokens": 4,
                    "hit_count": 0,
                    "vector": to_blob(vectors[i]),
                    "created_at": now,
                }
                for i in range(start, min(start + 5000, len(vectors)))
            ]
            await session.execute(insert(KnowledgeSegment), rows)
    return kb_id


async def bench_numpy(
    vectors: np.ndarray, queries: np.ndarray, model: Any, work: Path
) -> dict[str, Any]:
    engine, kb_id = await fill_sqlite(work, vectors)
    registry = EmbedderRegistry(threads=2)
    registry.register(model)
    knowledge = Knowledge(make_sessionmaker(engine), registry, NumpyStore())
    store = knowledge.store
    assert isinstance(store, NumpyStore)
    try:
        rss0 = rss_mb()
        start = time.perf_counter()
        await knowledge.search([kb_id], "warm up")  # loads the index
        first = time.perf_counter() - start
        rss1 = rss_mb()
        alone = []
        for q in queries:
            t0 = time.perf_counter()
            store.nearest(kb_id, q, 20)
            alone.append(time.perf_counter() - t0)
        cycle = iter(range(10**9))

        async def threaded() -> None:
            await store.search(kb_id, queries[next(cycle) % len(queries)], 20)

        async def embedded() -> None:
            text_ = QUESTIONS[next(cycle) % len(QUESTIONS)]
            vector = await asyncio.to_thread(model.embed, [text_])
            await store.search(kb_id, vector[0], 20)

        async def service() -> None:
            question = QUESTIONS[next(cycle) % len(QUESTIONS)]
            await knowledge.search([kb_id], question, SearchOptions(top_k=4))

        embed_only = await timings(
            lambda: asyncio.to_thread(model.embed, [QUESTIONS[next(cycle) % 20]]), 100
        )
        result = {
            "first_search_loads": first,
            "alone": alone,
            "threaded": await timings(threaded, len(queries)),
            "embed": embed_only,
            "embedded": await timings(embedded, 100),
            "service": await timings(service, 100),
            "index_mb": store.nbytes() / 2**20,
            "rss_added_mb": rss1 - rss0,
        }
    finally:
        knowledge.close()
        await engine.dispose()
    return result


async def bench_pgvector(
    vectors: np.ndarray, queries: np.ndarray, ef_values: Sequence[int], work: Path
) -> dict[str, Any]:
    with warnings.catch_warnings():  # XDG_RUNTIME_DIR unset: it says it uses /tmp
        warnings.simplefilter("ignore")
        import pgserver

    server = pgserver.get_server(work / "pg", cleanup_mode="delete")
    try:
        url = server.get_uri().replace("postgresql://", "postgresql+asyncpg://", 1)
        engine = make_engine(url)
        await upgrade(engine)
        sessions = make_sessionmaker(engine)
        start = time.perf_counter()
        kb_id = await add_rows(sessions, vectors)
        rows_s = time.perf_counter() - start
        store = PgVectorStore(sessions)

        async def read() -> tuple[list[str], np.ndarray]:
            raise AssertionError("pgvector reads its own rows")

        start = time.perf_counter()
        await store.sync(kb_id, 1, read)
        sync_s = time.perf_counter() - start
        exact = NumpyStore()
        async with sessions() as session:
            got = (
                await session.execute(
                    text("SELECT id, vector FROM knowledge_segments WHERE kb_id = :kb"),
                    {"kb": kb_id},
                )
            ).all()
            sizes = (
                await session.execute(
                    text(
                        "SELECT pg_total_relation_size(c.oid), "
                        "(SELECT sum(pg_relation_size(indexrelid)) FROM pg_index "
                        " WHERE indrelid = c.oid) FROM pg_class c "
                        "WHERE c.relname LIKE 'knowledge_vectors_%' AND c.relkind = 'r'"
                    )
                )
            ).one()
        exact.load(kb_id, 1, [r.id for r in got], from_blobs([r.vector for r in got], 384))
        truth = [{sid for sid, _ in exact.nearest(kb_id, q, 10)} for q in queries]
        by_ef = {}
        for ef in ef_values:
            store.ef_search = ef
            found, times = [], []
            for q in queries:
                t0 = time.perf_counter()
                found.append(await store.search(kb_id, q, 10))
                times.append(time.perf_counter() - t0)
            recall = statistics.mean(
                len(truth[i] & {sid for sid, _ in found[i]}) / 10 for i in range(len(queries))
            )
            by_ef[ef] = {"times": times, "recall": recall}
        await engine.dispose()
        return {
            "rows_s": rows_s,
            "sync_s": sync_s,
            "table_mb": int(sizes[0]) / 2**20,
            "index_mb": int(sizes[1] or 0) / 2**20,
            "by_ef": by_ef,
        }
    finally:
        server.cleanup()


# --- report ----------------------------------------------------------------------------------


def index_runs(saved: dict[str, Any] | None) -> list[dict[str, Any]]:
    """The indexing results, one per model (an older log holds one, of the packaged model)."""
    if not saved:
        return []
    return [saved] if "chunks" in saved else list(saved.values())


def table(
    index: dict[str, Any] | None,
    numpy_: dict[str, Any] | None,
    pg: dict[str, Any] | None,
    rows: int,
) -> str:
    lines = ["| measure | result | bar |", "|---|---|---|"]
    for run in index_runs(index):
        model = f"`{run.get('model', MINILM)}`, {run.get('batch', 16)} text(s) per call"
        lines += [
            f"| (a) index {run['chunks']} chunks (avg {run['tokens_per_chunk']:.0f} "
            f"wordpieces) from {run['documents']} documents, SQLite, end to end, {model} "
            f"| **{run['total']:.1f} s** ({run['chunks_per_s']:.1f} chunks/s; "
            f"embedding {run['embed']:.1f} s, parse + chunk + store "
            f"{run['total'] - run['embed']:.1f} s) | ≤ 45 s |",
            f"| (a) CPU time of that indexing (all threads of the process), {model} "
            f"| {run.get('cpu', 0):.1f} s ({run.get('cpu', 0) / run['chunks'] * 1000:.0f} "
            f"ms per chunk) | |",
            f"| model load (once per process), {model} | {run['load']:.2f} s | |",
        ]
    if numpy_:
        p = numpy_
        lines += [
            f"| (b) NumpyStore at {rows:,}: vector search alone (top 20), p50 / p95 "
            f"| **{ms(percentile(p['alone'], 50))}** / {ms(percentile(p['alone'], 95))} | |",
            f"| NumpyStore search via its worker thread, p50 / p95 "
            f"| {ms(percentile(p['threaded'], 50))} / {ms(percentile(p['threaded'], 95))} | |",
            f"| query embedding alone (short question, `{DEFAULT_EMBEDDER}`), p50 | {ms(percentile(p['embed'], 50))} | |",
            f"| query embedding + NumpyStore search, p50 / p95 "
            f"| **{ms(percentile(p['embedded'], 50))}** / {ms(percentile(p['embedded'], 95))} "
            f"| ≤ 20 ms |",
            f"| Knowledge.search (semantic, top 4, SQLite: embed + search + rows), p50 / p95 "
            f"| {ms(percentile(p['service'], 50))} / {ms(percentile(p['service'], 95))} | |",
            f"| first search after a change (loads {rows:,} vectors from SQLite) "
            f"| {p['first_search_loads']:.2f} s | |",
            f"| (c) numpy index in memory / process RSS it added "
            f"| {p['index_mb']:.0f} MB / {p['rss_added_mb']:.0f} MB | |",
        ]
    if pg:
        for ef, r in pg["by_ef"].items():
            lines.append(
                f"| (b) pgvector HNSW at {rows:,}, ef_search {ef}: p50 / p95, recall@10 "
                f"| **{ms(percentile(r['times'], 50))}** / {ms(percentile(r['times'], 95))}, "
                f"recall {r['recall']:.3f} | ≤ 5 ms, ≥ 0.95 |"
            )
        lines += [
            f"| pgvector: insert {rows:,} segments / sync into the vector table + HNSW build "
            f"| {pg['rows_s']:.1f} s / {pg['sync_s']:.1f} s | |",
            f"| (c) pgvector table (with index) / HNSW index on disk "
            f"| {pg['table_mb']:.0f} MB / {pg['index_mb']:.0f} MB | |",
        ]
    return "\n".join(lines)


def write_section(body: str) -> None:
    old = REPORT.read_text() if REPORT.exists() else "# Knowledge\n"
    start = old.find(SECTION)
    if start < 0:
        new = old.rstrip() + "\n\n" + body + "\n"
    else:
        end = old.find("\n## ", start + len(SECTION))
        new = old[:start] + body + ("\n" + old[end:] if end >= 0 else "\n")
    REPORT.write_text(new)


def header(runs: dict[str, Any]) -> str:
    """When each part ran and the machine's load average (1/5/15 min) around it."""
    names = {"index": "(a)", "numpy": "(b, c) numpy", "pg": "(b, c) pgvector"}
    parts = [
        f"{names[k]} {r['when']}, load {'/'.join(f'{x:.2f}' for x in r['load'][0])} before, "
        f"{'/'.join(f'{x:.2f}' for x in r['load'][1])} after"
        for k, r in runs.items()
    ]
    return (
        f"Measured with `bench/knowledge_speed.py` on {os.cpu_count()} cores "
        f"({platform.processor() or platform.machine()}), Python {platform.python_version()}: "
        + "; ".join(parts)
        + ". Other sessions share the machine; a load average includes this script's own threads. "
        "Vectors for (b) are synthetic unit vectors "
        "of 384 dimensions shaped like text embeddings (500 clusters in a 32-dimensional space, "
        "projected, plus noise); queries are drawn the same way."
    )


async def run_part(part: str, args: argparse.Namespace, work: Path) -> dict[str, Any]:
    if part == "index":
        results = {}
        for spec in args.models:
            results[spec] = result = await bench_indexing(args.chunks, work, spec, args.batch)
            print(
                f"indexing, {spec}: {result['total']:.1f} s for {result['chunks']} chunks",
                flush=True,
            )
        return results
    vectors = clustered(args.rows, 384, seed=1)
    queries = clustered(args.queries, 384, seed=2)
    if part == "numpy":
        model = EmbedderRegistry(threads=2).get(DEFAULT_EMBEDDER)
        return await bench_numpy(vectors, queries, model, work)
    return await bench_pgvector(vectors, queries, args.ef, work)


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--chunks", type=int, default=1000)
    parser.add_argument(
        "--models",
        nargs="+",
        default=[DEFAULT_EMBEDDER, MINILM],
        help="embedded models to index with, in turn",
    )
    parser.add_argument("--batch", type=int, default=0, help="texts per call (the model's own)")
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--queries", type=int, default=200)
    parser.add_argument("--ef", type=int, nargs="+", default=[40, 64, 100, 200])
    parser.add_argument(
        "--only",
        nargs="+",
        choices=["index", "numpy", "pg"],
        help="run these parts; the others are kept from the last run (bench/logs)",
    )
    parser.add_argument("--render", action="store_true", help="only rewrite from bench/logs")
    parser.add_argument("--no-write", action="store_true")
    args = parser.parse_args()
    runs: dict[str, Any] = {}
    if (args.only or args.render) and SAVED.exists():
        runs = json.loads(SAVED.read_text())
    if args.render:
        args.only = []
    with tempfile.TemporaryDirectory(prefix="knowledge-speed-") as tmp:
        work = Path(tmp)
        os.chmod(work, 0o755)  # pgserver runs PostgreSQL as another user when started as root
        for part in ["index", "numpy", "pg"] if args.only is None else args.only:
            before = os.getloadavg()
            when = dt.datetime.now().strftime("%Y-%m-%d %H:%M")
            result = await run_part(part, args, work)
            runs[part] = {"when": when, "load": [before, os.getloadavg()], "result": result}
            print(f"{part} done", flush=True)
    runs = {k: runs[k] for k in ("index", "numpy", "pg") if k in runs}
    if not args.no_write:
        SAVED.parent.mkdir(exist_ok=True)
        SAVED.write_text(json.dumps(runs))
    got = {k: r["result"] for k, r in runs.items()}
    body = "\n".join(
        [
            SECTION,
            "",
            header(runs),
            "",
            table(got.get("index"), got.get("numpy"), got.get("pg"), args.rows),
            "",
            NOTES,
        ]
    )
    print(body)
    if not args.no_write:
        write_section(body)


if __name__ == "__main__":
    asyncio.run(main())
