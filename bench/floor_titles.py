#!/usr/bin/env python3
"""What a title call per conversation costs the floor itself, in the 256-stream cell.

parlour, like Dify, asks the model for a title for every new conversation, and in the bench
every request is a new conversation: the mock serves a second (non-streamed) request per
request, on the CPU it shares with the load generator. The floor makes no title call. Here
the floor is measured alone and then beside a side load of non-streamed requests to the mock
at about its own rate (one per request, each held 640 ms by the mock like a title), in
rounds. The side load's client runs on the server CPU (``--side-cpus 0``, where parlour makes
its title calls) or on the mock's (``--side-cpus 1``).

  .venv/bin/python bench/floor_titles.py --rounds 3 --side-cpus 0
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import time

import run as R


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--side-concurrency", type=int, default=200, help="about 300 req/s at 640 ms each")
    ap.add_argument("--side-cpus", default="0")
    ap.add_argument("--mock-port", type=int, default=18000)
    ap.add_argument("--port", type=int, default=18080)
    a = ap.parse_args()
    aux, sut, side_cpus = R.cpus("1"), R.cpus("0"), R.cpus(a.side_cpus)
    R.wait_ports_free([a.mock_port, a.port], 900)
    R.LOGS.mkdir(exist_ok=True)
    mock = R.start(
        [R.PY, str(R.HARNESS / "mockllm.py"), "--port", str(a.mock_port), "--tokens", "32",
         "--delay-ms", "20"],
        R.LOGS / "floor-titles-mock.log", aux,
    )  # fmt: skip
    floor = None
    try:
        R.wait_http(f"http://127.0.0.1:{a.mock_port}/health")
        floor = R.start(
            [R.PY, str(R.HARNESS / "baseline_proxy.py"), "--port", str(a.port), "--upstream",
             f"http://127.0.0.1:{a.mock_port}/v1", "--client", "aiohttp"],
            R.LOGS / "floor-titles-floor.log", sut,
        )  # fmt: skip
        R.wait_http(f"http://127.0.0.1:{a.port}/health")
        for r in range(a.rounds):
            alone = cell(a, floor.pid, aux, warmup=512 if r == 0 else 64)
            side = subprocess.Popen(
                [R.PY, str(R.HARNESS / "loadgen.py"), "--api", "openai", "--base-url",
                 f"http://127.0.0.1:{a.mock_port}/v1", "--mode", "blocking", "-c",
                 str(a.side_concurrency), "-n", "1000000", "--tokens", "32", "--warmup", "0",
                 "--max-seconds", "14"],
                stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
                preexec_fn=lambda: os.sched_setaffinity(0, side_cpus),
            )  # fmt: skip
            time.sleep(1.0)
            beside = cell(a, floor.pid, aux, warmup=64)
            extra = json.loads(side.communicate()[0].strip().splitlines()[-1])
            print(
                f"round {r + 1}: alone {show(alone)} | with {extra['rps']:.0f} title-like req/s "
                f"{show(beside)} = {beside['rps'] / alone['rps']:.2f}x",
                flush=True,
            )
    finally:
        R.stop(floor)
        R.stop(mock)
    return 0


def cell(a, pid: int, cpus: set[int], warmup: int) -> dict:
    cmd = [
        R.PY, str(R.HARNESS / "loadgen.py"), "--base-url", f"http://127.0.0.1:{a.port}/v1",
        "--api-key", "bench", "--mode", "streaming", "-c", "256", "-n", "2048", "--tokens", "32",
        "--warmup", str(warmup), "--pids", f"sut={pid}",
    ]  # fmt: skip
    out = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
                         check=True, preexec_fn=lambda: os.sched_setaffinity(0, cpus))  # fmt: skip
    return json.loads(out.stdout.strip().splitlines()[-1])


def show(res: dict) -> str:
    return (f"{res['rps']:.0f} req/s, first token p50 {res['ttft_ms']['p50']:.0f} ms, "
            f"p99 {res['latency_ms']['p99']:.0f} ms")  # fmt: skip


if __name__ == "__main__":
    raise SystemExit(main())
