"""The embedded server holds against a hostile neighbour: another local user who can reach
its port and list its processes, but is not its owner."""

from __future__ import annotations

import os
import signal
import socket
import stat
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from common.embedded import (
    PASSWORD_FILE,
    DataDirInUseError,
    EmbeddedServer,
    _ask,
    attach_or_start,
    running_server,
)
from common.stores import connect_graph
from common.users.keys import new_api_key
from tests.support import ROOT, settings_for


@pytest.fixture
def server(tmp_path: Path) -> Iterator[EmbeddedServer]:
    started = EmbeddedServer(tmp_path / "data").start()
    yield started
    started.stop()


def raw_reply(port: int, *commands: bytes) -> bytes:
    """What the server answers a client that sends `commands` and nothing else."""
    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        sock.sendall(b"".join(commands))
        time.sleep(0.2)
        return sock.recv(65536)


def test_a_client_without_the_password_is_refused_and_reads_no_user(
    server: EmbeddedServer,
) -> None:
    store = connect_graph(settings_for(server))
    store.ensure_schema()
    store.users.create("victim", new_api_key().hashed)
    store.close()

    query = b'GRAPH.QUERY neonomaly "MATCH (u:User) RETURN u.name, u.api_key_hash"\r\n'
    anonymous = raw_reply(server.port, query)
    assert anonymous.startswith(b"-NOAUTH"), anonymous
    guessed = raw_reply(server.port, b"AUTH guessed\r\n", query)
    assert guessed.startswith(b"-WRONGPASS"), guessed
    assert b"victim" not in anonymous + guessed
    with pytest.raises(redis.AuthenticationError):
        redis.Redis(port=server.port).ping()
    with pytest.raises(redis.AuthenticationError):
        redis.Redis(port=server.port, password="guessed").ping()


def test_debug_module_and_protected_config_commands_are_off(server: EmbeddedServer) -> None:
    owner = redis.Redis.from_url(server.redis_url)
    for command in (("DEBUG", "SLEEP", "0"), ("MODULE", "LOAD", "/tmp/evil.so")):
        with pytest.raises(redis.ResponseError, match="not allowed"):
            owner.execute_command(*command)
    with pytest.raises(redis.ResponseError, match="protected config"):
        owner.config_set("dir", "/tmp")
    owner.close()


def test_data_dir_is_0700_and_every_file_in_it_0600(server: EmbeddedServer) -> None:
    owner = redis.Redis.from_url(server.redis_url)
    owner.set("neonomaly:test", "x")
    owner.save()  # writes dump.rdb too
    owner.close()
    data_dir = server.data_dir
    assert stat.S_IMODE(data_dir.stat().st_mode) == 0o700
    files = [path for path in data_dir.rglob("*") if path.is_file()]
    assert {"dump.rdb", PASSWORD_FILE, "redis.log", "server.json"} <= {p.name for p in files}
    assert any(p.parent.name == "appendonlydir" for p in files)
    for path in files:
        assert stat.S_IMODE(path.stat().st_mode) == 0o600, path
    for path in data_dir.rglob("*"):
        if path.is_dir():
            assert stat.S_IMODE(path.stat().st_mode) == 0o700, path


def test_server_info_is_read_whole(server: EmbeddedServer) -> None:
    """The start-up check for a server still loading its AOF reads all of INFO's reply."""
    reply = _ask(server.port, server.password, ("INFO", "persistence"))
    assert reply.startswith(b"+OK\r\n$") and b"loading:0" in reply
    assert reply.endswith(b"\r\n")


def test_the_password_is_in_no_command_line(server: EmbeddedServer) -> None:
    # Any local user can read a process's arguments (ps, /proc/PID/cmdline).
    assert server.process is not None
    assert server.password not in " ".join(str(arg) for arg in server.process.args)
    assert len(server.password) >= 32


def test_a_data_dir_left_readable_by_an_older_version_is_made_private(tmp_path: Path) -> None:
    data_dir = tmp_path / "old"
    (data_dir / "appendonlydir").mkdir(parents=True, mode=0o755)
    os.chmod(data_dir, 0o755)
    for name in ("redis.log", "dump.rdb", "celerybeat-schedule"):
        (data_dir / name).write_bytes(b"")
        os.chmod(data_dir / name, 0o644)
    unrelated = data_dir / "notes.txt"
    unrelated.write_text("not ours")
    os.chmod(unrelated, 0o644)
    server = EmbeddedServer(data_dir).start()
    try:
        assert stat.S_IMODE(data_dir.stat().st_mode) == 0o700
        assert stat.S_IMODE((data_dir / "appendonlydir").stat().st_mode) == 0o700
        for name in ("redis.log", "dump.rdb", "celerybeat-schedule"):
            assert stat.S_IMODE((data_dir / name).stat().st_mode) == 0o600, name
        # Only the service's own files are changed (the directory itself now hides them).
        assert stat.S_IMODE(unrelated.stat().st_mode) == 0o644
    finally:
        server.stop()


def test_the_password_and_the_data_survive_a_restart(tmp_path: Path) -> None:
    first = EmbeddedServer(tmp_path).start()
    redis.Redis.from_url(first.redis_url).set("neonomaly:kept", "yes")
    password = first.password
    first.stop()
    second = EmbeddedServer(tmp_path).start()
    try:
        assert second.password == password
        assert redis.Redis.from_url(second.redis_url).get("neonomaly:kept") == b"yes"
    finally:
        second.stop()


def test_a_second_server_on_the_same_data_dir_is_refused(server: EmbeddedServer) -> None:
    with pytest.raises(DataDirInUseError) as refused:
        EmbeddedServer(server.data_dir).start()
    assert refused.value.owner_pid == os.getpid()
    assert refused.value.url == f"redis://127.0.0.1:{server.port}/0"
    assert server.password not in str(refused.value)
    # The first one is untouched.
    assert running_server(server.data_dir) == server.address


def test_the_lock_is_freed_once_the_server_stops(tmp_path: Path) -> None:
    first = EmbeddedServer(tmp_path).start()
    first.stop()
    assert running_server(tmp_path) is None
    second = EmbeddedServer(tmp_path).start()  # no DataDirInUseError
    second.stop()


ATTACH = """
import sys
from pathlib import Path
from common.embedded import attach_or_start
print(attach_or_start(Path(sys.argv[1])).port, flush=True)
sys.stdin.read()  # keep (or keep using) the server until the test closes stdin
"""


def start_attacher(data_dir: Path) -> subprocess.Popen[str]:
    """A process that attaches to (or starts) the server on `data_dir` and prints its port."""
    return subprocess.Popen(
        [sys.executable, "-c", ATTACH, str(data_dir)],
        cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)},
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
    )  # fmt: skip


def redis_servers_on(data_dir: Path) -> list[int]:
    """Pids of the redis-servers working in `data_dir` (redis-server chdirs to its --dir)."""
    pids = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            if (
                Path(os.readlink(proc / "exe")).name == "redis-server"
                and Path(os.readlink(proc / "cwd")) == data_dir.resolve()
            ):
                pids.append(int(proc.name))
        except OSError:
            continue
    return pids


def test_processes_starting_at_once_share_one_server(tmp_path: Path) -> None:
    data_dir = tmp_path / "shared"
    processes = [start_attacher(data_dir) for _ in range(3)]
    try:
        ports = set()
        for process in processes:
            assert process.stdout is not None
            ports.add(process.stdout.readline().strip())  # each prints once attached
        assert len(ports) == 1, ports
        assert len(redis_servers_on(data_dir.resolve())) == 1
    finally:
        for process in processes:
            assert process.stdin is not None
            process.stdin.close()
        for process in processes:
            process.wait(30)


def test_attach_waits_for_a_server_that_is_still_starting(tmp_path: Path) -> None:
    """A process that finds the data dir locked but no server answering yet waits for it."""
    owner = start_attacher(tmp_path)
    try:
        deadline = time.monotonic() + 30
        while not (tmp_path / "server.lock").exists() and time.monotonic() < deadline:
            time.sleep(0.01)
        address = attach_or_start(tmp_path, timeout=30)
        assert owner.stdout is not None
        assert owner.stdout.readline().strip() == str(address.port)
    finally:
        assert owner.stdin is not None
        owner.stdin.close()
        owner.wait(30)


def test_a_killed_owner_takes_its_server_down_and_frees_the_data_dir(tmp_path: Path) -> None:
    owner = start_attacher(tmp_path)
    assert owner.stdout is not None
    owner.stdout.readline()
    owner.send_signal(signal.SIGKILL)
    owner.wait(10)
    deadline = time.monotonic() + 20
    while redis_servers_on(tmp_path.resolve()) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not redis_servers_on(tmp_path.resolve())
    # The lock goes with the server and whatever it forked (a background save holds the
    # descriptor until it ends): a loaded machine may take a moment more.
    deadline = time.monotonic() + 20
    while True:
        try:
            server = EmbeddedServer(tmp_path).start()
            break
        except DataDirInUseError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)
    server.stop()


def test_the_store_keeps_no_log_of_queries_and_their_parameters(server: EmbeddedServer) -> None:
    # FalkorDB's default keeps the last 1,000 queries with their parameters in the store:
    # hundreds of MB once ingest batches and chunk writes are among them.
    owner = redis.Redis.from_url(server.redis_url)
    big = "x" * 100_000
    for _ in range(3):
        owner.execute_command("GRAPH.QUERY", "logged", f'CYPHER big="{big}" RETURN size($big)')
    assert owner.execute_command("GRAPH.CONFIG", "GET", "MAX_INFO_QUERIES") == [
        b"MAX_INFO_QUERIES",
        0,
    ]
    assert sum(owner.memory_usage(key) or 0 for key in owner.keys("telemetry*")) < 10_000
    owner.close()


def test_every_write_is_in_the_aof_and_the_store_forks_itself_seldom(
    server: EmbeddedServer,
) -> None:
    # A fleet's sweeps rewrite every scan state, so the AOF grows by about its base each
    # sweep: at Redis's defaults the whole store forked and serialised itself once a sweep
    # (an AOF rewrite), and again every 5 minutes (a snapshot). Durability stays the AOF's,
    # flushed every second.
    owner = redis.Redis.from_url(server.redis_url)
    config = owner.config_get("*")
    assert config["appendonly"] == "yes"
    assert config["appendfsync"] == "everysec"
    assert config["auto-aof-rewrite-percentage"] == "300"
    assert int(config["auto-aof-rewrite-min-size"]) == 256 * 2**20
    assert config["save"] == "3600 1"
    owner.close()
