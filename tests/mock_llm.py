"""The shared mock LLM (../shared/bench/mockllm.py) as a subprocess on a free port."""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx

MOCK = Path(__file__).resolve().parents[2] / "shared" / "bench" / "mockllm.py"


@contextmanager
def mock_llm(port: int, tokens: int = 32, delay_ms: int = 0) -> Iterator[str]:
    """Yields the mock's OpenAI base URL; stops the process afterwards."""
    if not MOCK.exists():
        raise RuntimeError(f"the mock LLM is expected at {MOCK}")
    proc = subprocess.Popen(
        [sys.executable, str(MOCK), "--host", "127.0.0.1", "--port", str(port),
         "--tokens", str(tokens), "--delay-ms", str(delay_ms)],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 15
        while True:
            try:
                if httpx.get(base + "/health", timeout=0.5).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline or proc.poll() is not None:
                raise RuntimeError("the mock LLM did not start")
            time.sleep(0.05)
        yield base + "/v1"
    finally:
        proc.kill()  # its streams to closed clients would delay a graceful exit
        proc.wait(timeout=10)


def health(base_url: str) -> dict[str, object]:
    return httpx.get(base_url.removesuffix("/v1") + "/health", timeout=5).json()


def established_to(port: int) -> int:
    """Open TCP connections whose remote end is 127.0.0.1:``port`` (from /proc/net/tcp)."""
    count = 0
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        fields = line.split()
        remote, state = fields[2], fields[3]
        if state == "01" and int(remote.split(":")[1], 16) == port:
            count += 1
    return count
