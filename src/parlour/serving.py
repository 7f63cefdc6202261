"""How ``parlour serve`` runs: one process, or N workers each listening on a socket of its own.

uvicorn's supervisor hands every worker one shared listening socket, and the worker that wakes
first accepts a whole burst of connections: over 2 workers, a 256-stream benchmark run sent
61 % of its requests to one worker and 39 % to the other. Here each worker binds its own
socket with SO_REUSEPORT (on Linux, where the kernel then spreads new connections evenly over
them). A worker that dies closes its socket, so new connections go to the others until its
replacement (made by uvicorn's supervisor, as before) binds again. The supervisor keeps a
socket bound to the port without listening on it: the port stays reserved, and a port that is
already in use fails at start as before. Sockets with SO_REUSEPORT of the same user share a
port, so two such servers started at once (before either listens) could share one: the
supervisor also holds a lock on a file named after the port, and a second server fails.
"""

from __future__ import annotations

import logging
import socket
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import uvicorn
from uvicorn.config import STARTUP_FAILURE
from uvicorn.supervisors import multiprocess

from parlour.config import Settings

APP = "parlour.main:create_app"


def serve(settings: Settings, host: str, port: int, workers: int) -> None:
    options: dict[str, Any] = {
        "factory": True,
        "host": host,
        "port": port,
        "workers": workers,
        "log_level": settings.log_level,
        "loop": "uvloop",
        "http": "httptools",
        "access_log": False,
        "timeout_graceful_shutdown": int(settings.shutdown_grace),
    }
    if workers <= 1 or not sys.platform.startswith("linux"):  # elsewhere it does not balance
        uvicorn.run(APP, **options)
        return
    _check_free(host, port)  # a second server on the port must not quietly share it
    with reuse_port_socket(host, port) as held, _port_lock(held.getsockname()[1]):
        options["port"] = held.getsockname()[1]  # port 0: the one the system chose
        config = uvicorn.Config(APP, **options)
        # every worker the supervisor makes, replacements included, binds its own socket
        multiprocess.Process = OwnSocketWorker  # type: ignore[misc]
        try:
            multiprocess.Multiprocess(config, sockets=[]).run()
        except KeyboardInterrupt:
            pass
        finally:
            multiprocess.Process = UvicornWorker  # type: ignore[misc]


UvicornWorker = multiprocess.Process


class OwnSocketWorker(UvicornWorker):
    def target(self, sockets: list[socket.socket] | None = None) -> None:  # pragma: no cover
        try:  # uvicorn's server listens on it once the app has started, not before
            sock = reuse_port_socket(self.config.host, self.config.port)
        except OSError as exc:
            logging.getLogger("uvicorn.error").error("cannot listen: %s", exc)
            sys.exit(STARTUP_FAILURE)  # the supervisor stops rather than retry for ever
        super().target([sock])


def _check_free(host: str, port: int) -> None:
    """A port something listens on is refused. (Two servers started within the same second
    or two, before either has a worker listening, can still both pass.)"""
    with socket.socket(_family(host)) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError as exc:
            raise SystemExit(f"cannot listen on {host}:{port}: {exc.strerror}") from None


@contextmanager
def _port_lock(port: int) -> Iterator[None]:
    """Held while this server has workers on ``port``; another server started at the same
    moment finds it taken."""
    import fcntl  # only here: several workers are run this way on Linux alone

    path = Path(tempfile.gettempdir()) / f"parlour-port-{port}.lock"
    with path.open("a") as lock:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            raise SystemExit(
                f"cannot listen on port {port}: [Errno 98] Address already in use"
                " (another parlour server with several workers holds it)"
            ) from None
        yield


def reuse_port_socket(host: str, port: int) -> socket.socket:
    sock = socket.socket(_family(host), socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        sock.bind((host, port))
    except BaseException:
        sock.close()
        raise
    return sock


def _family(host: str) -> socket.AddressFamily:
    return socket.AF_INET6 if ":" in host else socket.AF_INET
