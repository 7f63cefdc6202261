#!/usr/bin/env python3
"""CPU per streamed request at C=16, 0 ms/token: the floor and parlour's deployments measured
in turn, several rounds, so that each ratio compares cells run seconds apart.

In the full matrix (run.py) each deployment's C=16 cell is measured once, minutes after the
floor's, from 200 requests: the floor's 0.4-0.7 ms per request is then 8 to 14 clock ticks,
and a slower or faster minute of this shared machine moves the ratio by as much as the bar's
margin. Here all servers are up at once (each pinned to the server CPU, only one loaded at a
time), and every round measures each of them, in a rotating order, on --n requests.

  .venv/bin/python bench/cpu16.py --rounds 5 --out bench/CPU16.md   # RESULTS.md includes it

The ratio of a PostgreSQL deployment counts its server's CPU, the postgres processes' and
Redis', as run.py's bar does.
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


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--n", type=int, default=1000, help="requests per cell")
    ap.add_argument("--phases", nargs="+", default=list(PORTS)[1:], choices=list(PORTS)[1:])
    ap.add_argument("--out", type=Path, help="a Markdown report (default: print only)")
    ap.add_argument("--pg-url", default="postgresql+asyncpg://postgres@127.0.0.1:5432/test")
    ap.add_argument("--sut-cpus", default="0")
    ap.add_argument("--aux-cpus", default="1")
    ap.add_argument("--mock-port", type=int, default=18000)
    a = ap.parse_args()
    aux, sutc = R.cpus(a.aux_cpus), R.cpus(a.sut_cpus)
    pre = lambda: os.sched_setaffinity(0, aux)  # noqa: E731
    R.wait_ports_free([a.mock_port, *PORTS.values()], 900)
    R.LOGS.mkdir(exist_ok=True)
    procs: list[subprocess.Popen] = []
    servers: dict[str, tuple[str, list[str]]] = {}  # phase -> (key, --pids)
    parlours: list[R.Parlour] = []
    try:
        procs.append(
            R.start(
                [R.PY, str(R.HARNESS / "mockllm.py"), "--port", str(a.mock_port), "--tokens", "32",
                 "--delay-ms", "0"],
                R.LOGS / "cpu16-mock.log", aux,
            )
        )  # fmt: skip
        floor = R.start(
            [R.PY, str(R.HARNESS / "baseline_proxy.py"), "--port", str(PORTS["floor-aiohttp"]),
             "--upstream", f"http://127.0.0.1:{a.mock_port}/v1", "--client", "aiohttp"],
            R.LOGS / "cpu16-floor.log", sutc,
        )  # fmt: skip
        procs.append(floor)
        R.wait_http(f"http://127.0.0.1:{a.mock_port}/health")
        R.wait_http(f"http://127.0.0.1:{PORTS['floor-aiohttp']}/health")
        servers["floor-aiohttp"] = ("bench", [f"sut={floor.pid}"])
        for phase in a.phases:  # all set up before any serves: a set-up flushes bench Redis
            ns = argparse.Namespace(
                pg_url=a.pg_url, pg_schema=f"bench_{phase.replace('-', '_')}",
                mock_port=a.mock_port, model="mock-gpt", port=PORTS[phase], sut_cpus=a.sut_cpus,
            )  # fmt: skip
            parlours.append(R.Parlour(ns, phase))
            parlours[-1].setup()
        for p in parlours:
            pid = p.serve()
            extra = [f"pg={x}" for x in p.pg_pids]
            if p.redis:
                extra.append(f"redis={R.redis_pid()}")
            servers[p.phase] = (p.key, [f"sut={pid}", *extra])
        order = list(servers)
        rows: list[dict[str, float]] = []
        for r in range(a.rounds):
            turn = order[r % len(order) :] + order[: r % len(order)]
            row: dict[str, float] = {}
            for phase in turn:
                key, pids = servers[phase]
                res = cell(a, phase, key, pids, pre, warmup=64 if r == 0 else 16)
                ms = res["cpu_ms_per_req"]
                row[phase] = ms["sut"] + ms.get("pg", 0.0) + ms.get("redis", 0.0)
                if res["errors"] or res["check_failures"]:
                    raise RuntimeError(f"{phase}: errors {res['errors']} {res['check_failures']}")
            rows.append(row)
            R.log(f"round {r + 1}: { {k: round(v, 3) for k, v in row.items()} }")
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


def cell(a, phase: str, key: str, pids: list[str], pre, warmup: int) -> dict:
    cmd = [
        R.PY, str(R.HARNESS / "loadgen.py"),
        "--base-url", f"http://127.0.0.1:{PORTS[phase]}/v1", "--api-key", key,
        "--mode", "streaming", "-c", "16", "-n", str(a.n), "--tokens", "32",
        "--warmup", str(warmup), "--label", f"cpu16-{phase}", "--pids", *pids,
    ]  # fmt: skip
    out = subprocess.run(cmd, stdout=subprocess.PIPE, text=True, check=True, preexec_fn=pre)
    return json.loads(out.stdout.strip().splitlines()[-1])


def render(a, rows: list[dict[str, float]]) -> str:
    phases = [p for p in rows[0] if p != "floor-aiohttp"]
    lines = [
        "# CPU per streamed request at C=16, 0 ms/token, measured in turn",
        "",
        f"`bench/cpu16.py --rounds {a.rounds} --n {a.n}` on {dt.datetime.now():%Y-%m-%d %H:%M}, "
        f"commit {R.git_rev()}, {os.cpu_count()} CPUs, Python {sys.version.split()[0]}. "
        f"Servers pinned to CPU {a.sut_cpus}, mock and load generator to CPU {a.aux_cpus}. "
        "Each cell: CPU ms per request (PostgreSQL rows: server + postgres + Redis); "
        "in brackets, its ratio to the aiohttp floor of the same round.",
        "",
        "| round | floor-aiohttp | " + " | ".join(phases) + " |",
        "|---|---|" + "---|" * len(phases),
    ]
    ratios: dict[str, list[float]] = {p: [] for p in phases}
    for i, row in enumerate(rows, 1):
        base = row["floor-aiohttp"]
        cells = []
        for p in phases:
            ratios[p].append(row[p] / base)
            cells.append(f"{row[p]:.2f} ({row[p] / base:.2f}x)")
        lines.append(f"| {i} | {base:.2f} | " + " | ".join(cells) + " |")
    lines += ["", "| deployment | median ratio | lowest | highest | bar |", "|---|---|---|---|---|"]
    for p in phases:
        bar = 2.0 if p == "sqlite" else 3.0
        med = statistics.median(ratios[p])
        lines.append(
            f"| {p} | **{med:.2f}x** | {min(ratios[p]):.2f}x | {max(ratios[p]):.2f}x | "
            f"<= {bar:g}x: {'met' if med <= bar else 'NOT met'} |"
        )
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    sys.exit(main())
