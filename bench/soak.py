#!/usr/bin/env python3
"""Soak: many streaming requests at high concurrency over several workers, then an audit.

parlour serve --workers 2 on PostgreSQL (a fresh schema) + Redis (database 7, flushed), the
app's model on the shared mock LLM (32 tokens, 20 ms before each), an active-request limit
set (so every request takes and gives back a slot in Redis) but above the concurrency.
loadgen.py sends the requests and checks every streamed answer; afterwards this script checks
the database and Redis themselves:

  - every request has exactly one message row, whose answer is the mock's exact answer
    for its query (mockllm.expected_answer), with status normal; no row is left running
  - no Redis key is left behind but the live workers' heartbeats (no task ids, no slots)
  - no connection is left open: none from clients, none to the mock in use, and the
    PostgreSQL backends are no more than the pools' sizes

Usage (from the repository root):
  .venv/bin/python bench/soak.py                 # 10,000 requests at C=256 -> bench/SOAK.md
  .venv/bin/python bench/soak.py -n 1000 -c 64   # shorter
"""

from __future__ import annotations

import argparse
import asyncio
import json
import subprocess
import sys
import time
from pathlib import Path

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH))

import run as bench  # noqa: E402

sys.path.insert(0, str(bench.HARNESS))

from mockllm import expected_answer  # noqa: E402

from parlour.services.titles import clean_title  # noqa: E402

ALLOWED_KEYS = ("parlour:worker:",)


async def audit_database(url: str, schema: str, tokens: int) -> dict:
    import asyncpg

    conn = await asyncpg.connect(url.replace("postgresql+asyncpg://", "postgresql://"))
    try:
        await conn.execute(f'SET search_path TO "{schema}"')
        rows = await conn.fetch(
            "SELECT m.query, m.answer, m.status, c.name FROM messages m"
            " JOIN conversations c ON c.id = m.conversation_id"
        )
        backends = await conn.fetchval(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
            "AND pid <> pg_backend_pid()"
        )
    finally:
        await conn.close()
    by_query: dict[str, int] = {}
    wrong, untitled, statuses = 0, 0, {}
    for query, answer, status, name in rows:
        by_query[query] = by_query.get(query, 0) + 1
        statuses[status] = statuses.get(status, 0) + 1
        expected = expected_answer(tokens, query, True)
        if answer != expected:
            wrong += 1
        if name != clean_title(expected, query):  # the mock titles with the same answer
            untitled += 1
    return {
        "rows": len(rows),
        "distinct_queries": len(by_query),
        "duplicated_queries": sum(1 for n in by_query.values() if n > 1),
        "wrong_answers": wrong,
        "untitled": untitled,
        "statuses": statuses,
        "running": statuses.get("running", 0),
        "postgres_backends": backends,
    }


def established(port: int, side: str) -> int:
    out = subprocess.run(
        ["ss", "-Htn", "state", "established", f"( {side} = :{port} )"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    return len([x for x in out.splitlines() if x.strip()])


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("-n", "--requests", type=int, default=10_000)
    ap.add_argument("-c", "--concurrency", type=int, default=256)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--tokens", type=int, default=32)
    ap.add_argument("--delay-ms", type=float, default=20)
    ap.add_argument("--model", default="mock-gpt")
    ap.add_argument("--mock-port", type=int, default=18000)
    ap.add_argument("--port", type=int, default=5001)
    ap.add_argument("--pg-url", default="postgresql+asyncpg://postgres@127.0.0.1:5432/test")
    ap.add_argument("--pg-schema", default="soak")
    ap.add_argument("--sut-cpus", default="0")
    ap.add_argument("--aux-cpus", default="1")
    ap.add_argument("--out", type=Path, default=BENCH / "SOAK.md")
    a = ap.parse_args(argv)

    bench.LOGS.mkdir(exist_ok=True)
    bench.wait_ports_free([a.port, a.mock_port], 900)
    phase = "pg-redis-2w" if a.workers == 2 else "pg-redis"
    bench.DEPLOYMENTS[phase] = ("pg", a.workers, True)
    mock = bench.start(
        [
            bench.PY,
            str(bench.HARNESS / "mockllm.py"),
            "--port",
            str(a.mock_port),
            "--tokens",
            str(a.tokens),
            "--delay-ms",
            str(a.delay_ms),
        ],
        bench.LOGS / "soak-mock.log",
        bench.cpus(a.aux_cpus),
        cwd=bench.HARNESS,
    )
    p = bench.Parlour(a, phase)
    # a limit above the concurrency: every request takes and gives back a slot in Redis
    p.env["PARLOUR_APP_DEFAULT_ACTIVE_REQUESTS"] = str(a.concurrency * 4)
    result_file = bench.LOGS / f"soak-{time.strftime('%Y%m%d-%H%M%S')}.jsonl"
    try:
        bench.wait_http(f"http://127.0.0.1:{a.mock_port}/health")
        p.setup()
        pid = p.serve()
        t0 = time.time()
        subprocess.run(
            [
                bench.PY,
                str(bench.HARNESS / "loadgen.py"),
                "--base-url",
                f"http://127.0.0.1:{a.port}/v1",
                "--api-key",
                p.key,
                "--mode",
                "streaming",
                "-c",
                str(a.concurrency),
                "-n",
                str(a.requests),
                "--tokens",
                str(a.tokens),
                "--max-seconds",
                "1800",
                "--label",
                "soak",
                "--pids",
                f"sut={pid}",
                "--out",
                str(result_file),
            ],
            cwd=bench.HARNESS,
            check=True,
            preexec_fn=lambda: __import__("os").sched_setaffinity(0, bench.cpus(a.aux_cpus)),
        )
        wall = time.time() - t0
        load = json.loads(result_file.read_text().splitlines()[-1])
        time.sleep(3)  # background titles finish; idle keep-alive connections time out
        db = asyncio.run(audit_database(a.pg_url, a.pg_schema, a.tokens))
        keys = bench.redis_cli("-n", str(bench.REDIS_DB), "--scan").splitlines()
        leaked = [k for k in keys if not k.startswith(ALLOWED_KEYS)]
        conns = {
            "clients_to_parlour": established(a.port, "sport"),
            "parlour_to_mock": established(a.mock_port, "dport"),
        }
        # idle keep-alive connections to the mock close after aiohttp's 30 s keep-alive; its
        # cleanup runs every 30 s, so one may stay up to 60 s
        waited = 0
        while established(a.mock_port, "dport") and waited < 75:
            time.sleep(1)
            waited += 1
        conns["parlour_to_mock_later"] = established(a.mock_port, "dport")
        conns["waited"] = waited
    finally:
        p.close()
        bench.stop(mock)

    pools = a.workers * 10 * 3  # per worker: SQLAlchemy pool 10 + overflow 10, hot-path pool 10
    checks = {
        "every request answered and checked by loadgen": load["ok"] == a.requests
        and not load["errors"]
        and not load["check_failures"],
        "one message row per request": db["rows"] == db["distinct_queries"] == a.requests
        and db["duplicated_queries"] == 0,
        "every stored answer is the mock's exact answer": db["wrong_answers"] == 0,
        "every conversation carries the model's title": db["untitled"] == 0,
        "no row left running; all normal": db["running"] == 0
        and db["statuses"].get("normal", 0) == a.requests,
        "no Redis key left but worker heartbeats": not leaked,
        "no client connection left open": conns["clients_to_parlour"] == 0,
        "no connection to the mock left open 75 s later": conns["parlour_to_mock_later"] == 0,
        f"PostgreSQL backends within the pools (<= {pools})": db["postgres_backends"] <= pools,
    }
    ok = all(checks.values())
    lines = [
        "# Soak: parlour on PostgreSQL + Redis",
        "",
        f"Run by `bench/soak.py` on {time.strftime('%Y-%m-%d %H:%M')} at commit "
        f"{bench.code_rev()}: `parlour serve --workers {a.workers}` (pinned to CPU "
        f"{a.sut_cpus}), {a.requests} streaming requests at C={a.concurrency}, each a new "
        f"conversation, mock LLM {a.tokens} tokens at {a.delay_ms:g} ms per token.",
        "",
        f"- loadgen: {load['ok']} ok of {load['requests']} in {load['wall_s']:.1f} s "
        f"({load['rps']} req/s), errors {load['errors'] or 0}, check failures "
        f"{load['check_failures'] or 0}; latency p50/p99 {load['latency_ms']['p50']:.0f}/"
        f"{load['latency_ms']['p99']:.0f} ms; TTFT p50/p99 {load['ttft_ms']['p50']:.0f}/"
        f"{load['ttft_ms']['p99']:.0f} ms; parlour CPU {load['cpu_ms_per_req'].get('sut')} ms/request",
        f"- database: {db['rows']} message rows, {db['distinct_queries']} distinct queries, "
        f"{db['duplicated_queries']} duplicated, {db['wrong_answers']} wrong answers, "
        f"{db['untitled']} conversations without the model's title, "
        f"statuses {db['statuses']}; {db['postgres_backends']} PostgreSQL backends open after the run",
        f"- Redis: {len(keys)} keys after the run, {len(leaked)} not worker heartbeats"
        + (f": {leaked[:10]}" if leaked else ""),
        f"- connections after the run: {conns['clients_to_parlour']} from clients, "
        f"{conns['parlour_to_mock']} idle keep-alive to the mock, "
        f"{conns['parlour_to_mock_later']} of them still open {conns['waited']} s later",
        f"- whole run {wall:.0f} s",
        "",
        "| check | result |",
        "|---|---|",
        *[f"| {name} | {'yes' if good else '**NO**'} |" for name, good in checks.items()],
        "",
    ]
    a.out.write_text("\n".join(lines))
    print("\n".join(lines))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
