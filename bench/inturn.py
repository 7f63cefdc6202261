#!/usr/bin/env python3
"""The floor and parlour's deployments measured in turn, several rounds, so that each ratio
compares cells run seconds apart. Two cells of the issue's bar:

  --cell cpu16      CPU per streamed request at C=16, 0 ms/token (the ratio counts the
                    server's CPU, and for PostgreSQL rows the postgres processes' and Redis')
  --cell streams256 256 streams at 20 ms/token: req/s and full-request p99 against the floor's

In the full matrix (run.py) each deployment's cell is measured once, minutes after the
floor's: the floor's C=16 CPU per request is then 8 to 14 clock ticks, and its 256-stream
req/s moves by 10% from one minute of this shared machine to the next, as much as the bar's
margin. Here all servers are up at once (each pinned to the server CPU, only one loaded at a
time), and every round measures each of them, in a rotating order.

  .venv/bin/python bench/inturn.py --cell cpu16 --rounds 5 --out bench/CPU16.md
  .venv/bin/python bench/inturn.py --cell streams256 --rounds 5 --out bench/STREAMS256.md
  # a change against the code as it is: a second deployment served from another tree
  .venv/bin/python bench/inturn.py --cell streams256 --phases sqlite --variant /tmp/wt/src
  .venv/bin/python bench/inturn.py --cell streams256 --phases pg-redis --variant /tmp/wt/src \
      --variant-of pg-redis

RESULTS.md includes the last run of each cell (CPU16.md, STREAMS256.md).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import statistics
import subprocess
import sys
from pathlib import Path

import run as R

PORTS = {"floor-aiohttp": 18080, "sqlite": 5011, "pg-redis": 5012, "pg-redis-2w": 5013}
VARIANT, VARIANT_PORT = "variant", 5014
CELLS = {  # cell -> (concurrency, mock ms per token, default requests per measurement)
    "cpu16": (16, 0, 1000),
    "streams256": (256, 20, 2048),
}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--cell", choices=list(CELLS), default="cpu16")
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--n", type=int, help="requests per measurement (default by cell)")
    ap.add_argument("--phases", nargs="+", default=list(PORTS)[1:], choices=list(PORTS)[1:])
    ap.add_argument("--variant", type=Path, help="also serve a deployment from this source tree (PYTHONPATH)")
    ap.add_argument("--variant-of", default="sqlite", choices=list(PORTS)[1:],
                    help="the deployment --variant serves (default sqlite)")  # fmt: skip
    ap.add_argument("--out", type=Path, help="a Markdown report (default: print only)")
    ap.add_argument("--pg-url", default="postgresql+asyncpg://postgres@127.0.0.1:5432/test")
    ap.add_argument("--sut-cpus", default="0")
    ap.add_argument("--aux-cpus", default="1")
    ap.add_argument("--mock-port", type=int, default=18000)
    a = ap.parse_args()
    a.concurrency, a.delay, default_n = CELLS[a.cell]
    a.n = a.n or default_n
    aux, sutc = R.cpus(a.aux_cpus), R.cpus(a.sut_cpus)
    pre = lambda: os.sched_setaffinity(0, aux)  # noqa: E731
    R.wait_ports_free([a.mock_port, VARIANT_PORT, *PORTS.values()], 900)
    R.LOGS.mkdir(exist_ok=True)
    procs: list[subprocess.Popen] = []
    servers: dict[str, tuple[int, str, list[str]]] = {}  # phase -> (port, key, --pids)
    parlours: list[R.Parlour] = []
    try:
        procs.append(
            R.start(
                [R.PY, str(R.HARNESS / "mockllm.py"), "--port", str(a.mock_port), "--tokens", "32",
                 "--delay-ms", str(a.delay)],
                R.LOGS / f"{a.cell}-mock.log", aux,
            )
        )  # fmt: skip
        floor = R.start(
            [R.PY, str(R.HARNESS / "baseline_proxy.py"), "--port", str(PORTS["floor-aiohttp"]),
             "--upstream", f"http://127.0.0.1:{a.mock_port}/v1", "--client", "aiohttp"],
            R.LOGS / f"{a.cell}-floor.log", sutc,
        )  # fmt: skip
        procs.append(floor)
        R.wait_http(f"http://127.0.0.1:{a.mock_port}/health")
        R.wait_http(f"http://127.0.0.1:{PORTS['floor-aiohttp']}/health")
        servers["floor-aiohttp"] = (PORTS["floor-aiohttp"], "bench", [f"sut={floor.pid}"])
        wanted = [(p, PORTS[p]) for p in a.phases] + ([(VARIANT, VARIANT_PORT)] if a.variant else [])
        for phase, port in wanted:  # all set up before any serves: a set-up flushes bench Redis
            kind = a.variant_of if phase == VARIANT else phase
            ns = argparse.Namespace(
                pg_url=a.pg_url, pg_schema=f"bench_{phase.replace('-', '_')}",
                mock_port=a.mock_port, model="mock-gpt", port=port, sut_cpus=a.sut_cpus,
            )  # fmt: skip
            p = R.Parlour(ns, kind)
            p.phase = phase
            if phase == VARIANT:
                p.env["PYTHONPATH"] = str(a.variant.resolve())
            p.setup()
            parlours.append(p)
        for p in parlours:
            pid = p.serve()
            extra = [f"pg={x}" for x in p.pg_pids]
            if p.redis:
                extra.append(f"redis={R.redis_pid()}")
            servers[p.phase] = (p.a.port, p.key, [f"sut={pid}", *extra])
        order = list(servers)
        rows: list[dict[str, dict]] = []
        for r in range(a.rounds):
            turn = order[r % len(order) :] + order[: r % len(order)]
            row: dict[str, dict] = {}
            for phase in turn:
                port, key, pids = servers[phase]
                res = cell(a, phase, port, key, pids, pre, warmup=first_warmup(a) if r == 0 else 64)
                if res["errors"] or res["check_failures"]:
                    raise RuntimeError(f"{phase}: errors {res['errors']} {res['check_failures']}")
                row[phase] = measure(a, res)
            rows.append(row)
            R.log(f"round {r + 1}: { {k: v['value'] for k, v in row.items()} }")
    finally:
        for p in parlours:
            p.close()
        for proc in reversed(procs):
            R.stop(proc)
    report = render(a, rows)
    print(report)
    if a.out:
        a.out.write_text(report)
    return 0


def first_warmup(a) -> int:
    return 64 if a.cell == "cpu16" else 512


def cell(a, phase: str, port: int, key: str, pids: list[str], pre, warmup: int) -> dict:
    cmd = [
        R.PY, str(R.HARNESS / "loadgen.py"),
        "--base-url", f"http://127.0.0.1:{port}/v1", "--api-key", key,
        "--mode", "streaming", "-c", str(a.concurrency), "-n", str(a.n), "--tokens", "32",
        "--warmup", str(warmup), "--label", f"{a.cell}-{phase}", "--pids", *pids,
    ]  # fmt: skip
    out = subprocess.run(cmd, stdout=subprocess.PIPE, text=True, check=True, preexec_fn=pre)
    return json.loads(out.stdout.strip().splitlines()[-1])


def measure(a, res: dict) -> dict:
    """The cell's number: CPU ms per request, or req/s with its p99 beside it."""
    if a.cell == "cpu16":
        ms = res["cpu_ms_per_req"]
        return {"value": round(ms["sut"] + ms.get("pg", 0.0) + ms.get("redis", 0.0), 3)}
    return {"value": res["rps"], "p99": res["latency_ms"]["p99"], "ttft": res["ttft_ms"]["p50"]}


def render(a, rows: list[dict[str, dict]]) -> str:
    phases = [p for p in rows[0] if p != "floor-aiohttp"]
    cpu = a.cell == "cpu16"
    head = (
        "# CPU per streamed request at C=16, 0 ms/token, measured in turn"
        if cpu
        else "# 256 streams at 20 ms/token, measured in turn"
    )
    what = (
        "Each cell: CPU ms per request (PostgreSQL rows: server + postgres + Redis); "
        "in brackets, its ratio to the aiohttp floor of the same round."
        if cpu
        else "Each cell: req/s of requests that passed every check, full-request p99 in ms and "
        "first-token p50 in ms; in brackets, the req/s and p99 ratios to the aiohttp floor of "
        f"the same round. Each measurement: {a.n} requests after a warm-up."
    )
    lines = [
        head,
        "",
        f"`bench/inturn.py --cell {a.cell} --rounds {a.rounds} --n {a.n}` on "
        f"{dt.datetime.now():%Y-%m-%d %H:%M}, commit {R.git_rev()}, {os.cpu_count()} CPUs, "
        f"Python {sys.version.split()[0]}. Servers pinned to CPU {a.sut_cpus}, mock and load "
        f"generator to CPU {a.aux_cpus}. {what}",
        "",
        "| round | floor-aiohttp | " + " | ".join(phases) + " |",
        "|---|---|" + "---|" * len(phases),
    ]
    ratios: dict[str, list[float]] = {p: [] for p in phases}
    p99s: dict[str, list[float]] = {p: [] for p in phases}
    for i, row in enumerate(rows, 1):
        base = row["floor-aiohttp"]
        cells = []
        for p in phases:
            m = row[p]
            ratios[p].append(m["value"] / base["value"])
            if cpu:
                cells.append(f"{m['value']:.2f} ({ratios[p][-1]:.2f}x)")
            else:
                p99s[p].append(m["p99"] / base["p99"])
                cells.append(
                    f"{m['value']:.0f}, p99 {m['p99']:.0f}, TTFT {m['ttft']:.0f} "
                    f"({ratios[p][-1]:.2f}x, {p99s[p][-1]:.2f}x)"
                )
        floor = (
            f"{base['value']:.2f}"
            if cpu
            else f"{base['value']:.0f}, p99 {base['p99']:.0f}, TTFT {base['ttft']:.0f}"
        )
        lines.append(f"| {i} | {floor} | " + " | ".join(cells) + " |")
    if cpu:
        lines += ["", "| deployment | median ratio | lowest | highest | bar |", "|---|---|---|---|---|"]
    else:
        lines += [
            "",
            "| deployment | median req/s ratio | lowest | highest | median p99 ratio | bar |",
            "|---|---|---|---|---|---|",
        ]
    for p in phases:
        med = statistics.median(ratios[p])
        lo, hi = min(ratios[p]), max(ratios[p])
        if cpu:
            bar = 2.0 if p.startswith("sqlite") else 3.0
            ok = med <= bar
            lines.append(
                f"| {p} | **{med:.3f}x** | {lo:.2f}x | {hi:.2f}x | "
                f"<= {bar:g}x: {'met' if ok else 'NOT met'} |"
            )
        else:
            p99 = statistics.median(p99s[p])
            ok = med >= 0.9 and p99 <= 1.2
            lines.append(
                f"| {p} | **{med:.3f}x** | {lo:.2f}x | {hi:.2f}x | **{p99:.3f}x** | "
                f">= 0.9x and p99 <= 1.2x: {'met' if ok else 'NOT met'} |"
            )
    lines += ["", "Raw rows (each round: phase -> measurement):", "", "```json"]
    lines += [json.dumps(row, sort_keys=True) for row in rows]
    lines += ["```"]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    sys.exit(main())
