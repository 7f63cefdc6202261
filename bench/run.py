#!/usr/bin/env python3
"""One benchmark run of parlour against the floor, with the shared harness (../shared/bench).

In one run, on a fresh results file:
  1. floor-httpx     matrix.py --start-baseline                 (baseline_proxy.py, httpx upstream)
  2. floor-aiohttp   matrix.py --start-baseline --baseline-args '--client aiohttp'
  3. parlour-sqlite  parlour serve on a fresh SQLite file, app model openai:mock-gpt -> the mock;
                     the standard matrix, then the no-title rows (auto_generate_name false,
                     streaming, C=16 delay 0 and C=256 delay 20)
  4. parlour-pg      the same on PostgreSQL (a fresh schema), postgres processes accounted
  5. RESULTS.md      report.py --best, plus ratios against both floors and the issue's bar

matrix.py starts and restarts the mock LLM (mockllm.py, 32 tokens) per delay on --mock-port;
this script starts its own mock only for --smoke checks and --profile.  Parlour is started
pinned to the server CPU (and given to matrix.py with --sut-pids sut=PID --pin-sut).

Usage (from the repository root; the bench python is the project's venv):
  .venv/bin/python bench/run.py                  # full run -> bench/results-<time>.jsonl, bench/RESULTS.md
  .venv/bin/python bench/run.py --smoke          # few requests per cell, all four servers,
                                                 #   -> bench/logs/RESULTS-smoke.md; fails on any error
  .venv/bin/python bench/run.py --profile        # py-spy on parlour (SQLite), streaming C=16 delay 0
                                                 #   -> bench/PROFILE.md (needs py-spy in the venv)
  .venv/bin/python bench/run.py --only sqlite pg # some phases only (floor-httpx floor-aiohttp sqlite pg)
  .venv/bin/python bench/run.py --render bench/results-X.jsonl   # re-render RESULTS.md from a file

Long: run it in the background, e.g.
  nohup .venv/bin/python bench/run.py > bench/logs/run.out 2>&1 &
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import datetime as dt
import json
import os
import platform
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

BENCH = Path(__file__).resolve().parent
REPO = BENCH.parent
HARNESS = Path(os.environ.get("PARLOUR_BENCH_HARNESS", REPO.parent / "shared" / "bench")).resolve()
PY = sys.executable
LOGS = BENCH / "logs"

FLOORS = ("floor-httpx", "floor-aiohttp")
# parlour deployments: phase -> (database, workers, Redis)
DEPLOYMENTS = {
    "sqlite": ("sqlite", 1, False),
    "pg": ("pg", 1, False),
    "pg-redis": ("pg", 1, True),
    "pg-redis-2w": ("pg", 2, True),
}
PHASES = ("floor-httpx", "floor-aiohttp", *DEPLOYMENTS)
DEFAULT_PHASES = ("floor-httpx", "floor-aiohttp", "sqlite", "pg-redis", "pg-redis-2w")
REDIS_DB = 7  # flushed before a run; parlour's keys are counted in it afterwards
NO_TITLE = '{"auto_generate_name": false}'
# the extra no-title rows: (concurrency, delay ms), streaming only
NO_TITLE_CELLS = ((16, 0), (256, 20))


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", flush=True)


# --------------------------------------------------------------------------- processes and ports


def port_busy(port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(0.5)
        return s.connect_ex(("127.0.0.1", port)) == 0


def who_listens(port: int) -> str:
    try:
        out = subprocess.run(
            ["ss", "-ltnpH", f"sport = :{port}"], capture_output=True, text=True
        ).stdout
        return out.strip() or "?"
    except OSError:
        return "?"


def wait_ports_free(ports: list[int], max_wait: float) -> None:
    """The harness binds these ports itself; a stray process on one would answer instead."""
    deadline = time.time() + max_wait
    warned = False
    while True:
        busy = [p for p in ports if port_busy(p)]
        if not busy:
            return
        if time.time() > deadline:
            raise SystemExit(f"port(s) {busy} still in use: {[who_listens(p) for p in busy]}")
        if not warned:
            log(f"waiting for port(s) {busy} to be free: {[who_listens(p) for p in busy]}")
            warned = True
        time.sleep(5)


def wait_http(url: str, timeout: float = 60.0) -> None:
    deadline = time.time() + timeout
    while time.time() < deadline:
        try:
            urllib.request.urlopen(url, timeout=1).read()
            return
        except Exception:
            time.sleep(0.2)
    raise RuntimeError(f"{url} did not come up within {timeout:.0f}s")


def cpus(spec: str) -> set[int]:
    out: set[int] = set()
    for part in spec.split(","):
        lo, _, hi = part.partition("-")
        out.update(range(int(lo), int(hi or lo) + 1))
    return out


def start(cmd: list[str], logfile: Path, cpuset: set[int] | None, **kw) -> subprocess.Popen:
    pre = (lambda: os.sched_setaffinity(0, cpuset)) if cpuset else None
    return subprocess.Popen(
        cmd,
        stdout=open(logfile, "w"),
        stderr=subprocess.STDOUT,
        preexec_fn=pre,
        start_new_session=True,
        **kw,
    )


def stop(p: subprocess.Popen | None, grace: float = 20.0) -> None:
    if p is None or p.poll() is not None:
        return
    p.send_signal(signal.SIGTERM)
    try:
        p.wait(grace)
    except subprocess.TimeoutExpired:
        p.kill()
        p.wait()


# --------------------------------------------------------------------------- parlour


class Parlour:
    """A parlour server on a fresh database, with a 'bench' app on the mock and its key."""

    def __init__(self, a: argparse.Namespace, phase: str):
        db, self.workers, self.redis = DEPLOYMENTS[phase]
        self.a, self.db, self.phase = a, db, phase
        self.proc: subprocess.Popen | None = None
        self.key = ""
        self.pg_pids: list[int] = []
        self.data_dir = Path(tempfile.mkdtemp(prefix=f"parlour-bench-{phase}-"))
        self.bin = str(Path(PY).parent / "parlour")
        env = {k: v for k, v in os.environ.items() if not k.startswith(("PARLOUR_", "OPENAI_"))}
        env.update(
            PARLOUR_DATA_DIR=str(self.data_dir),
            PARLOUR_DATABASE_URL=a.pg_url if db == "pg" else "",
            PARLOUR_DATABASE_SCHEMA=a.pg_schema if db == "pg" else "",
            PARLOUR_OPENAI_BASE_URL=f"http://127.0.0.1:{a.mock_port}/v1",
            PARLOUR_CREATE_DEMO_APP="false",
            PARLOUR_HOST="127.0.0.1",
            PARLOUR_PORT=str(a.port),
            PARLOUR_REDIS_URL=f"redis://127.0.0.1:6379/{REDIS_DB}" if self.redis else "",
        )
        self.env = env

    def cli(self, *args: str) -> object:
        # cwd = the data dir: no stray .env is read
        out = subprocess.run(
            [self.bin, *args],
            env=self.env,
            cwd=self.data_dir,
            capture_output=True,
            text=True,
            check=False,
        )
        if out.returncode != 0:
            raise RuntimeError(f"parlour {' '.join(args)} failed:\n{out.stdout}\n{out.stderr}")
        return json.loads(out.stdout)

    def setup(self) -> None:
        if self.db == "pg":
            self.pg_pids = asyncio.run(pg_reset_schema(self.a.pg_url, self.a.pg_schema))
        if self.redis:
            redis_cli("-n", str(REDIS_DB), "FLUSHDB")
        app = self.cli("apps", "create", "bench", "--model", f"openai:{self.a.model}", "--json")
        keys = self.cli("keys", "create", "bench", "--json")
        key = keys[0] if isinstance(keys, list) else keys
        self.key = key["key"]
        log(
            f"parlour ({self.phase}): data dir {self.data_dir}, app {app[0]['id'] if isinstance(app, list) else app}"
        )

    def serve(self) -> int:
        LOGS.mkdir(exist_ok=True)
        workers = ["--workers", str(self.workers)] if self.workers > 1 else []
        self.proc = start(
            [self.bin, "serve", *workers],
            LOGS / f"parlour-{self.phase}.log",
            cpus(self.a.sut_cpus),
            env=self.env,
            cwd=self.data_dir,
        )
        wait_http(f"http://127.0.0.1:{self.a.port}/v1/", 90)
        log(f"parlour ({self.phase}) serving on :{self.a.port}, pid {self.proc.pid}")
        return self.proc.pid

    def close(self) -> None:
        stop(self.proc)
        self.proc = None
        shutil.rmtree(self.data_dir, ignore_errors=True)


def redis_cli(*args: str) -> str:
    return subprocess.run(
        ["redis-cli", *args], capture_output=True, text=True, check=True
    ).stdout.strip()


def redis_pid() -> int:
    info = redis_cli("INFO", "server")
    return int(next(x for x in info.splitlines() if x.startswith("process_id:")).split(":")[1])


async def pg_reset_schema(url: str, schema: str) -> list[int]:
    """Drop and create the bench schema; return the postmaster PID (its backends are children)."""
    import asyncpg

    dsn = url.replace("postgresql+asyncpg://", "postgresql://")
    conn = await asyncpg.connect(dsn)
    try:
        ident = '"' + schema.replace('"', '""') + '"'
        await conn.execute(f"DROP SCHEMA IF EXISTS {ident} CASCADE")
        await conn.execute(f"CREATE SCHEMA {ident}")
        backend = await conn.fetchval("SELECT pg_backend_pid()")
        try:  # read while this backend is alive: its parent is the postmaster
            stat = open(f"/proc/{backend}/stat", "rb").read()
            return [int(stat[stat.rfind(b")") + 2 :].split()[1])]
        except OSError:
            raise RuntimeError(
                "postgres is not a local process here: its CPU cannot be accounted"
            ) from None
    finally:
        await conn.close()


# --------------------------------------------------------------------------- the harness


def matrix(
    a: argparse.Namespace,
    label: str,
    out: Path,
    *,
    base_url: str,
    api_key: str = "bench",
    start_baseline: bool = False,
    baseline_args: str = "",
    sut_pids: list[str] = (),
    extra_pids: list[str] = (),
    extra: str = "",
    modes=None,
    concurrency=None,
    delays=None,
) -> None:
    cmd = [
        PY,
        str(HARNESS / "matrix.py"),
        "--label",
        label,
        "--out",
        str(out),
        "--base-url",
        base_url,
        "--api-key",
        api_key,
        "--mock-port",
        str(a.mock_port),
        "--tokens",
        str(a.tokens),
        "--sut-cpus",
        a.sut_cpus,
        "--aux-cpus",
        a.aux_cpus,
        "--modes",
        *(modes or a.modes),
        "--concurrency",
        *map(str, concurrency or a.concurrency),
        "--delays",
        *map(str, delays if delays is not None else a.delays),
    ]
    if start_baseline:
        cmd.append("--start-baseline")
    if baseline_args:
        cmd.append(f"--baseline-args={baseline_args}")
    if sut_pids:
        cmd += ["--sut-pids", *sut_pids, "--pin-sut"]
    if extra_pids:
        cmd += ["--extra-pids", *extra_pids]
    if extra:
        cmd.append(f"--extra={extra}")
    cmd.append(f"--loadgen-args=--meta rev={code_rev()}")
    cmd += a.matrix_args
    log(f"matrix {label}" + (f" extra={extra}" if extra else ""))
    wait_ports_free([a.mock_port] + ([a.baseline_port] if start_baseline else []), a.port_wait)
    r = subprocess.run(cmd, cwd=HARNESS)
    if r.returncode != 0:
        raise RuntimeError(f"matrix.py for {label} exited with {r.returncode}")


def run_parlour(a: argparse.Namespace, phase: str, out: Path) -> None:
    p = Parlour(a, phase)
    try:
        p.setup()
        pid = p.serve()
        base = f"http://127.0.0.1:{a.port}/v1"
        sut = [f"sut={pid}"]
        extra_pids = [f"pg={x}" for x in p.pg_pids]
        if p.redis:
            extra_pids.append(f"redis={redis_pid()}")
        label = f"parlour-{phase}"
        matrix(a, label, out, base_url=base, api_key=p.key, sut_pids=sut, extra_pids=extra_pids)
        if a.no_title_rows:
            for c, d in NO_TITLE_CELLS:
                if c in a.concurrency and d in a.delays:
                    matrix(
                        a,
                        f"{label}-notitle",
                        out,
                        base_url=base,
                        api_key=p.key,
                        sut_pids=sut,
                        extra_pids=extra_pids,
                        extra=NO_TITLE,
                        modes=["streaming"],
                        concurrency=[c],
                        delays=[d],
                    )
    finally:
        p.close()


# --------------------------------------------------------------------------- profile


def profile(a: argparse.Namespace) -> None:
    """py-spy on parlour under streaming load (by default SQLite, C=16, delay 0; see the
    --profile-* options); summary -> bench/PROFILE.md or --profile-out."""
    spy = shutil.which("py-spy", path=str(Path(PY).parent)) or shutil.which("py-spy")
    if not spy:
        raise SystemExit("py-spy not found: .venv/bin/pip install py-spy")
    LOGS.mkdir(exist_ok=True)
    wait_ports_free([a.mock_port, a.port], a.port_wait)
    aux = cpus(a.aux_cpus) if a.aux_cpus else None
    mock = start(
        [
            PY,
            str(HARNESS / "mockllm.py"),
            "--port",
            str(a.mock_port),
            "--tokens",
            str(a.tokens),
            "--delay-ms",
            str(a.profile_delay),
        ],
        LOGS / "mock-profile.log",
        aux,
        cwd=HARNESS,
    )
    p = Parlour(a, a.profile_phase)
    results: dict[str, dict] = {}
    try:
        wait_http(f"http://127.0.0.1:{a.mock_port}/health")
        p.setup()
        pid = p.serve()
        for extra in ("", NO_TITLE):
            tag = "notitle" if extra else "default"
            raw = LOGS / f"profile-{tag}.txt"
            lg = [
                PY,
                str(HARNESS / "loadgen.py"),
                "--base-url",
                f"http://127.0.0.1:{a.port}/v1",
                "--api-key",
                p.key,
                "--mode",
                "streaming",
                "-c",
                str(a.profile_concurrency),
                "-n",
                "100000",
                "--tokens",
                str(a.tokens),
                "--warmup",
                "64",
                "--max-seconds",
                str(a.profile_seconds + 6),
                "--label",
                f"profile-{tag}",
                "--pids",
                f"sut={pid}",
            ]
            if extra:
                lg += ["--extra", extra]
            pre = (lambda: os.sched_setaffinity(0, aux)) if aux else None
            load = subprocess.Popen(
                lg, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, preexec_fn=pre
            )
            time.sleep(4)  # past the warm-up
            log(f"py-spy record ({tag}) for {a.profile_seconds}s")
            t0 = thread_cpu(pid)
            subprocess.run(
                [
                    spy,
                    "record",
                    "-p",
                    str(pid),
                    "-d",
                    str(a.profile_seconds),
                    "-r",
                    "100",
                    "--format",
                    "raw",
                    "--threads",
                    "--nonblocking",
                    "-o",
                    str(raw),
                ],
                preexec_fn=pre,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
                check=True,
            )
            t1 = thread_cpu(pid)
            line = load.communicate()[0].strip().splitlines()[-1]
            split = {
                "main": t1.get(pid, 0) - t0.get(pid, 0),
                "other threads": sum(v - t0.get(t, 0) for t, v in t1.items() if t != pid),
            }
            results[tag] = {
                "load": json.loads(line),
                "raw": raw,
                "threads": split,
                "seconds": a.profile_seconds,
            }
    finally:
        p.close()
        stop(mock)
    write_profile(a, results)


def thread_cpu(pid: int) -> dict[int, float]:
    """CPU seconds of each thread of pid (from /proc)."""
    out = {}
    clk = os.sysconf("SC_CLK_TCK")
    for t in os.listdir(f"/proc/{pid}/task"):
        try:
            s = open(f"/proc/{pid}/task/{t}/stat", "rb").read()
        except OSError:
            continue
        rest = s[s.rfind(b")") + 2 :].split()
        out[int(t)] = (int(rest[11]) + int(rest[12])) / clk
    return out


def frame_name(frame: str) -> str:
    # py-spy raw frames: "function (path/to/file.py:123)"; keep function and short file
    fn, _, loc = frame.partition(" (")
    path = loc.rstrip(")").rsplit(":", 1)[0]
    for marker in ("site-packages/", "lib/python3.11/", "src/"):
        if marker in path:
            path = path.split(marker, 1)[1]
            break
    return f"{fn} ({path})"


STARTUP = (
    (
        "<module> (parlour)",
        "main (parlour/cli.py)",
        "serve (parlour/cli.py)",
        "Runner.run (asyncio/",
        "run (uvicorn/main.py)",
        "asyncio_run (uvicorn/",
        "Server.run (uvicorn/server.py)",
    )
    + tuple(
        f"{fn} (typer/"
        for fn in (
            "_main",
            "Typer.__call__",
            "get_callback.<locals>.wrapper",
            "TyperGroup.invoke",
            "TyperGroup.main",
        )
    )
    + ("Context.invoke (typer/", "Command.__call__ (typer/", "Command.invoke (typer/")
)


def summarize(raw: Path) -> dict:
    """Main-thread (event loop) samples only: py-spy counts aiosqlite's worker threads, blocked
    in SimpleQueue.get, as active, while /proc shows them nearly idle."""
    own: collections.Counter = collections.Counter()
    total: collections.Counter = collections.Counter()
    pkgs: collections.Counter = collections.Counter()
    threads: collections.Counter = collections.Counter()
    n = 0
    for line in raw.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack or not count.isdigit():
            continue
        c = int(count)
        head, _, rest = stack.partition(";")
        name = head.split(": ", 1)[-1]
        threads[name.split(" (")[0] if "(" in name else name] += c
        if name != "MainThread":
            continue
        frames = [frame_name(f) for f in rest.split(";") if " (" in f]
        if not frames:
            continue
        n += c
        own[frames[-1]] += c
        for f in set(frames):
            total[f] += c
        leaf = frames[-1].rsplit("(", 1)[1].rstrip(")")
        pkgs[leaf.split("/", 1)[0] if "/" in leaf else leaf] += c
    # the start-up chain down to the event loop says nothing
    chain = {f for f in total if f.startswith(STARTUP)}
    return {
        "n": n,
        "own": own.most_common(25),
        "pkgs": pkgs.most_common(15),
        "threads": threads,
        "total": [(f, c) for f, c in total.most_common() if f not in chain][:30],
        "parlour": [(f, c) for f, c in total.most_common() if "(parlour/" in f and f not in chain][
            :25
        ],
    }


def write_profile(a: argparse.Namespace, results: dict[str, dict]) -> None:
    out = [
        "# Where parlour's CPU goes (py-spy)",
        "",
        f"Generated by `bench/run.py --profile` on {dt.datetime.now():%Y-%m-%d %H:%M}, commit {git_rev()}.",
        f"parlour ({a.profile_phase}), pinned to CPU {a.sut_cpus}; mock ({a.tokens} tokens, "
        f"{a.profile_delay:g} ms) and loadgen on CPU {a.aux_cpus}; streaming, "
        f"C={a.profile_concurrency}, each request a new conversation; "
        f"`py-spy record --nonblocking --threads -r 100 --format raw` for {a.profile_seconds} s.",
        "",
        "Only the main thread (the event loop) is analysed: /proc shows it uses nearly all of the "
        "process's CPU (split below), while py-spy reports aiosqlite's worker threads as busy when "
        "they are blocked waiting for work. Percentages are of the main thread's active samples; "
        "`ms/req` = that share of the main thread's CPU time per request during the window. "
        "`Runner.run` self time is native code under the loop (uvloop's socket I/O, callbacks).",
        "",
    ]
    for tag, r in results.items():
        ld, sp = r["load"], r["threads"]
        s = summarize(r["raw"])
        n = s["n"] or 1
        reqs = max(1.0, (ld["rps"] or 0) * r["seconds"])
        main_ms = 1000 * sp["main"] / reqs

        def row(f, c, n=n, main_ms=main_ms):
            return f"| {100 * c / n:.1f} | {main_ms * c / n:.2f} | `{f}` |"

        title = (
            "request body as loadgen sends it (auto_generate_name true)"
            if tag == "default"
            else "with `--extra '{\"auto_generate_name\": false}'`"
        )
        others = ", ".join(f"{k} {v}" for k, v in s["threads"].most_common(4))
        out += [
            f"## {title}",
            "",
            f"Load during the profile (py-spy attached): {ld['rps']} req/s, parlour {ld['cpu_cores'].get('sut')} "
            f"cores, {ld['cpu_ms_per_req'].get('sut')} CPU ms/req, errors {ld['errors'] or 0}, check failures "
            f"{ld['check_failures'] or 0}, other cores {ld['other_cores']}. CPU by thread (/proc) during the "
            f"profile: main {sp['main']:.2f} s, all other threads {sp['other threads']:.2f} s "
            f"(~{main_ms:.2f} main-thread ms/req). {s['n']} main-thread samples (samples by thread name: "
            f"{others}).",
            "",
            "Self time (leaf frame):",
            "",
            "| % | ms/req | function (file) |",
            "|---:|---:|---|",
            *[row(f, c) for f, c in s["own"][:20]],
            "",
            "Inclusive time, parlour's own functions:",
            "",
            "| % | ms/req | function (file) |",
            "|---:|---:|---|",
            *[row(f, c) for f, c in s["parlour"]],
            "",
            "Inclusive time, all functions (below the event loop):",
            "",
            "| % | ms/req | function (file) |",
            "|---:|---:|---|",
            *[row(f, c) for f, c in s["total"]],
            "",
            "Self time by package of the leaf frame:",
            "",
            "| % | ms/req | package |",
            "|---:|---:|---|",
            *[row(f, c).replace("`", "") for f, c in s["pkgs"]],
            "",
        ]
    target = a.profile_out or BENCH / "PROFILE.md"
    target.write_text("\n".join(out))
    log(f"wrote {target}")


# --------------------------------------------------------------------------- RESULTS.md


def load_best(path: Path) -> dict[tuple, dict]:
    """One row per (label, delay, mode, C): the latest with other_cores <= 0.25, else the least
    disturbed (report.py --best's rule)."""
    best: dict[tuple, dict] = {}
    for line in path.read_text().splitlines():
        if not line.strip():
            continue
        r = json.loads(line)
        k = (r["label"], float(r["meta"].get("delay_ms", 0)), r["response_mode"], r["concurrency"])
        o = r.get("other_cores") or 0
        ob = (best[k].get("other_cores") or 0) if k in best else None
        if ob is None or o <= 0.25 or o < ob:
            best[k] = r
    return best


def ratio(x, y) -> str:
    if x is None or y in (None, 0):
        return "-"
    return f"{x / y:.2f}"


def num(v) -> str:
    if v is None:
        return "-"
    return f"{v:.1f}" if v < 100 else f"{v:.0f}"


def code_rev() -> str:
    """HEAD, plus a hash of uncommitted changes under src/ (what parlour serve runs)."""
    import hashlib

    rev = git_rev()
    try:
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--", "src"], cwd=REPO, capture_output=True, text=True
        ).stdout
        if not dirty.strip():
            return rev
        h = hashlib.sha1(
            subprocess.run(
                ["git", "diff", "HEAD", "--", "src"], cwd=REPO, capture_output=True
            ).stdout
        )
        for line in sorted(dirty.splitlines()):
            if line.startswith("??"):
                path = REPO / line[3:].strip()
                for f in sorted(path.rglob("*") if path.is_dir() else [path]):
                    if f.is_file() and "__pycache__" not in f.parts:
                        h.update(str(f).encode() + f.read_bytes())
        return f"{rev}+dirty.{h.hexdigest()[:8]}"
    except OSError:
        return rev


def git_rev() -> str:
    try:
        return (
            subprocess.run(
                ["git", "rev-parse", "--short", "HEAD"], cwd=REPO, capture_output=True, text=True
            ).stdout.strip()
            or "?"
        )
    except OSError:
        return "?"


def bar_lines(bar: list[str], lab: str, r16, f16, r256, f256) -> bool:
    """The bars of the two issues for one deployment: CPU per streamed request at C=16
    (SQLite: server <= 2x the aiohttp floor, and <= 3x; PostgreSQL: server + postgres + Redis
    <= 3x) and 256 streams at 20 ms/token (>= 0.9x req/s with p99 <= 1.2x; and >= 0.8x)."""
    ok_all = True
    if r16 and f16:
        cpu = r16["cpu_ms_per_req"]
        own = cpu["sut"]
        total = own + cpu.get("pg", 0.0) + cpu.get("redis", 0.0)
        base = f16["cpu_ms_per_req"]["sut"]
        if "pg" in cpu:
            x = total / base
            ok = x <= 3
            bar.append(
                f"- {lab}: streaming CPU/request at C=16, delay 0, server + postgres + Redis: "
                f"{own:.2f} + {cpu.get('pg', 0):.2f} + {cpu.get('redis', 0):.2f} = {total:.2f} ms "
                f"vs aiohttp floor {base:.2f} ms = **{x:.2f}x** (bar <= 3x): "
                + ("**yes**" if ok else "**NO**")
            )
        else:
            x = own / base
            ok = x <= 2
            bar.append(
                f"- {lab}: streaming server CPU/request at C=16, delay 0: {own:.2f} ms vs "
                f"aiohttp floor {base:.2f} ms = **{x:.2f}x** (bar <= 2x; the core issue's <= 3x: "
                + ("yes" if x <= 3 else "NO")
                + "): "
                + ("**yes**" if ok else "**NO**")
            )
        ok_all &= ok
    if r256 and f256:
        x = r256["rps"] / f256["rps"]
        p99 = r256["latency_ms"]["p99"] / f256["latency_ms"]["p99"]
        ok = x >= 0.9 and p99 <= 1.2
        bar.append(
            f"- {lab}: 256 streams at 20 ms/token: {r256['rps']:.1f} req/s vs aiohttp floor "
            f"{f256['rps']:.1f} = **{x:.2f}x**, p99 {r256['latency_ms']['p99']:.0f} vs "
            f"{f256['latency_ms']['p99']:.0f} ms = **{p99:.2f}x** (bar >= 0.9x and p99 <= 1.2x; "
            "the core issue's >= 0.8x: "
            + ("yes" if x >= 0.8 else "NO")
            + "): "
            + ("**yes**" if ok else "**NO**")
        )
        ok_all &= ok
    return ok_all


def render(path: Path, dest: Path, note: str = "") -> bool:
    best = load_best(path)
    labels = sorted({k[0] for k in best}, key=lambda s: (not s.startswith("floor"), s))
    suts = [lab for lab in labels if lab.startswith("parlour")]
    cells = sorted({k[1:] for k in best}, key=lambda k: (k[0], k[1] != "blocking", k[2]))

    def floor(name, cell):
        return best.get((name, *cell))

    lines = [
        "# Benchmark: parlour vs the floor",
        "",
        "Generated by `bench/run.py` (see its docstring) with the shared harness "
        "(`../shared/bench`: mockllm.py, baseline_proxy.py, loadgen.py, matrix.py, report.py) on "
        f"{dt.datetime.now():%Y-%m-%d %H:%M} (rendered at commit {git_rev()}), "
        f"{os.cpu_count()} CPUs, Python {platform.python_version()}; results file `{path.name}`.",
        "",
        "Mock LLM: 32 tokens per reply, 0 or 20 ms before each token. Each request is a new "
        "conversation. Requests per cell: at least 1,000 at 0 ms (since 2026-11-24; 200 before), "
        "48 at 20 ms, and 8 per concurrent stream. The server under test (the floor, or parlour with all its workers: "
        "`-2w` = `parlour serve --workers 2`) is pinned to CPU 0; mock and load generator share "
        "CPU 1; PostgreSQL and Redis are not pinned. `pg-redis` rows use Redis for the task "
        "registry and the limits. `parlour-*` rows "
        "send the body as loadgen sends it (so `auto_generate_name` is true and every new "
        "conversation also makes a background title call to the mock, as Dify does); "
        '`*-notitle` rows add `{"auto_generate_name": false}`.',
        "",
    ]
    revs: dict[str, set] = {}
    for (lab, *_), r in best.items():
        if lab.startswith("floor"):
            continue
        revs.setdefault(r["meta"].get("rev", "?"), set()).add(lab)
    lines += [
        "Code measured (`rev` = commit, `+dirty.<hash>` = uncommitted changes under src/ at the time): "
        + "; ".join(f"`{rv}`: {', '.join(sorted(labs))}" for rv, labs in sorted(revs.items())),
        "",
    ]
    lines += [
        "CPU accounting is the harness's: utime+stime of the named processes and their live "
        "descendants, sampled before and after each run, so a process that exits during a run "
        "(e.g. a PostgreSQL backend closed by a pool) takes its CPU with it. `other cores` is the "
        "rest of the machine's CPU during the run (other work on this shared 2-core machine); "
        "matrix.py waits for a quiet machine and repeats runs above 0.25. Where the CPU goes "
        "inside parlour: PROFILE.md (`bench/run.py --profile`).",
        "",
    ]
    if note:
        lines += [note, ""]

    # ---- the bar
    bar_ok = True
    bar = ["## This issue's bar", ""]
    bad = []
    for k, r in sorted(best.items()):
        if k[0].startswith("parlour") and (r["errors"] or r["check_failures"]):
            bad.append(
                f"{k[0]} {k[2]} C={k[3]} delay {k[1]:g}: errors {r['errors']} checks {r['check_failures']}"
            )
    n_cells = sum(1 for k in best if k[0].startswith("parlour"))
    bar.append(
        f"- 0 errors and 0 check failures in every parlour cell ({n_cells} cells): "
        + ("**yes**" if not bad else "**NO**: " + "; ".join(bad))
    )
    bar_ok &= not bad
    for lab in [s for s in suts if not s.endswith("-notitle")]:
        bar_ok &= bar_lines(
            bar,
            lab,
            best.get((lab, 0.0, "streaming", 16)),
            floor("floor-aiohttp", (0.0, "streaming", 16)),
            best.get((lab, 20.0, "streaming", 256)),
            floor("floor-aiohttp", (20.0, "streaming", 256)),
        )
    disturbed = [
        f"{k[0]} {k[2]} C={k[3]} delay {k[1]:g} ({r.get('other_cores')})"
        for k, r in sorted(best.items())
        if (r.get("other_cores") or 0) > 0.25
    ]
    bar.append(
        "- rows with other_cores > 0.25 (other work on the machine during the run; matrix.py "
        "repeated them up to 3 times, this is the least disturbed): "
        + (", ".join(disturbed) if disturbed else "none")
    )
    lines += bar + [""]

    # ---- ratios
    lines += [
        "## Ratios (parlour ÷ floor, per cell)",
        "",
        "CPU = the server process's CPU ms per request (for PostgreSQL rows, `+pg` adds the postgres "
        "processes'); req/s counts only requests that passed every check; p99 = full-request latency "
        "p99; TTFT p99 for streaming. Above 1 is worse for CPU and p99, better for req/s.",
        "",
        "| server | delay ms | mode | C | req/s | CPU ms/req | ÷ aiohttp: CPU | req/s | p99 | TTFT p99 "
        "| ÷ httpx: CPU | req/s | p99 | errors | check fails | other cores |",
        "|" + "---|" * 16,
    ]
    for lab in suts:
        for cell in cells:
            r = best.get((lab, *cell))
            if not r:
                continue
            fa, fh = floor("floor-aiohttp", cell), floor("floor-httpx", cell)
            cpu = r["cpu_ms_per_req"].get("sut")
            cpu_s = f"{cpu:.2f}" if cpu is not None else "-"
            for extra in ("pg", "redis"):
                if extra in r["cpu_ms_per_req"]:
                    cpu_s += f" +{extra} {r['cpu_ms_per_req'][extra]:.2f}"

            def g(x, *ks):
                for k_ in ks:
                    x = (x or {}).get(k_) if isinstance(x, dict) else None
                return x

            lines.append(
                "| "
                + " | ".join(
                    [
                        lab,
                        f"{cell[0]:g}",
                        cell[1],
                        str(cell[2]),
                        num(r["rps"]),
                        cpu_s,
                        ratio(cpu, g(fa, "cpu_ms_per_req", "sut")),
                        ratio(r["rps"], g(fa, "rps")),
                        ratio(g(r, "latency_ms", "p99"), g(fa, "latency_ms", "p99")),
                        ratio(g(r, "ttft_ms", "p99"), g(fa, "ttft_ms", "p99")),
                        ratio(cpu, g(fh, "cpu_ms_per_req", "sut")),
                        ratio(r["rps"], g(fh, "rps")),
                        ratio(g(r, "latency_ms", "p99"), g(fh, "latency_ms", "p99")),
                        json.dumps(r["errors"]) if r["errors"] else "0",
                        json.dumps(r["check_failures"]) if r["check_failures"] else "0",
                        num(r.get("other_cores")),
                    ]
                )
                + " |"
            )
    lines += [""]

    # ---- the full table, by the harness's report.py
    rep = subprocess.run(
        [PY, str(HARNESS / "report.py"), str(path), "--best"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    lines += ["## All rows (`report.py --best`)", "", rep.rstrip(), ""]
    for extra in ("CPU16.md", "STREAMS256.md", "SOAK.md"):  # inturn.py's and soak.py's last runs
        part = BENCH / extra
        if part.exists():  # one heading level down
            lines += ["#" + x if x.startswith("#") else x for x in part.read_text().splitlines()]
            lines += [""]
    dest.write_text("\n".join(lines))
    log(f"wrote {dest}; bar {'met' if bar_ok else 'NOT met'}")
    return bar_ok


# --------------------------------------------------------------------------- main


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument(
        "--only", nargs="+", choices=PHASES, default=list(DEFAULT_PHASES), help="phases to run"
    )
    ap.add_argument(
        "--smoke",
        action="store_true",
        help="few requests per cell (C 1 16 256, no retries); results to bench/logs/; "
        "exit 1 on any error or check failure",
    )
    ap.add_argument(
        "--profile", action="store_true", help="only profile parlour with py-spy (-> PROFILE.md)"
    )
    ap.add_argument("--profile-seconds", type=int, default=20)
    ap.add_argument("--profile-phase", choices=PHASES[2:], default="sqlite")
    ap.add_argument("--profile-concurrency", type=int, default=16)
    ap.add_argument("--profile-delay", type=float, default=0.0, help="mock ms per token")
    ap.add_argument("--profile-out", type=Path, help="default bench/PROFILE.md")
    ap.add_argument("--render", type=Path, help="only render RESULTS.md from this results file")
    ap.add_argument("--out", type=Path, help="results file (default bench/results-<time>.jsonl)")
    ap.add_argument(
        "--results-md",
        type=Path,
        help="default bench/RESULTS.md (smoke: bench/logs/RESULTS-smoke.md)",
    )
    ap.add_argument("--modes", nargs="+", default=["blocking", "streaming"])
    ap.add_argument("--concurrency", nargs="+", type=int, default=[1, 16, 64, 256])
    ap.add_argument("--delays", nargs="+", type=float, default=[0, 20])
    ap.add_argument(
        "--no-title-rows",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="also the streaming rows with auto_generate_name false (C=16/0 ms, C=256/20 ms)",
    )
    ap.add_argument(
        "--tokens", type=int, default=32, help="mock tokens per reply (loadgen checks them)"
    )
    ap.add_argument(
        "--min-n", type=int, default=1000, help="requests per 0 ms cell (at least; matrix.py)"
    )
    ap.add_argument("--model", default="mock-gpt", help="the mock's model name")
    ap.add_argument("--mock-port", type=int, default=18000)
    ap.add_argument("--baseline-port", type=int, default=18080)
    ap.add_argument("--port", type=int, default=5001, help="parlour's port")
    ap.add_argument("--pg-url", default="postgresql+asyncpg://postgres@127.0.0.1:5432/test")
    ap.add_argument("--pg-schema", default="bench", help="dropped and created afresh for the run")
    ap.add_argument("--sut-cpus", default="0")
    ap.add_argument("--aux-cpus", default="1")
    ap.add_argument("--port-wait", type=float, default=900, help="max s to wait for a busy port")
    ap.add_argument(
        "--matrix-args",
        nargs=argparse.REMAINDER,
        default=[],
        help="the rest goes to matrix.py as is, e.g. --matrix-args --retries 1",
    )
    a = ap.parse_args(argv)

    if a.render:
        return 0 if render(a.render, a.results_md or BENCH / "RESULTS.md") else 1
    if a.profile:
        profile(a)
        return 0

    LOGS.mkdir(exist_ok=True)
    stamp = time.strftime("%Y%m%d-%H%M%S")
    if a.smoke:
        a.concurrency = [c for c in a.concurrency if c in (1, 16, 256)]
        a.matrix_args = [
            "--n-per-c",
            "1",
            "--min-n",
            "32",
            "--min-n-delayed",
            "8",
            "--warmup-per-c",
            "0.25",
            "--retries",
            "0",
            "--quiet-wait",
            "20",
            "--settle",
            "0.3",
            *a.matrix_args,
        ]
        out = a.out or LOGS / f"results-smoke-{stamp}.jsonl"
        dest = a.results_md or LOGS / "RESULTS-smoke.md"
    else:
        # 1,000 requests (not the harness's 200) in the 0 ms cells: at 200, the floor's CPU per
        # request is 8 to 14 clock ticks, too coarse for a ratio against a bar
        a.matrix_args = ["--min-n", str(a.min_n), *a.matrix_args]
        out = a.out or BENCH / f"results-{stamp}.jsonl"
        dest = a.results_md or BENCH / "RESULTS.md"
    log(f"results -> {out}")
    wait_ports_free([a.port], a.port_wait)

    # SIGTERM: stop cleanly (the finally blocks stop parlour; matrix.py stops its own children)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    if "floor-httpx" in a.only:
        matrix(
            a,
            "floor-httpx",
            out,
            base_url=f"http://127.0.0.1:{a.baseline_port}/v1",
            start_baseline=True,
            baseline_args="--client httpx",
        )
    if "floor-aiohttp" in a.only:
        matrix(
            a,
            "floor-aiohttp",
            out,
            base_url=f"http://127.0.0.1:{a.baseline_port}/v1",
            start_baseline=True,
            baseline_args="--client aiohttp",
        )
    for phase in DEPLOYMENTS:
        if phase in a.only:
            run_parlour(a, phase, out)
    ok = render(out, dest)
    if a.smoke:
        best = load_best(out)
        bad = {
            k: (r["errors"], r["check_failures"])
            for k, r in best.items()
            if r["errors"] or r["check_failures"]
        }
        log("smoke: " + ("0 errors, 0 check failures" if not bad else f"FAILURES {bad}"))
        return 1 if bad else 0
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
