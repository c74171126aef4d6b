"""tools/neo4j-server as the README's development server: a fixed port, a database that
stays in its data dir across runs, and a server that outlives the shell that started it."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import time
from pathlib import Path

import neo4j
import pytest

from tests.neo4j_server import JAVA_OPTIONS, SERVER_JAR, START_TIMEOUT
from tests.support import free_port

pytestmark = [
    pytest.mark.slow,
    pytest.mark.neo4j,
    pytest.mark.timeout(3 * START_TIMEOUT),
    pytest.mark.skipif(not SERVER_JAR.exists(), reason="tools/neo4j-server is not built"),
]
PASSWORD = "dev-password"


def start_dev_server(port: int, data: Path, log: Path) -> int:
    """The README's command, run from a shell that exits at once; the server's pid."""
    command = (
        f"{shutil.which('java')} {' '.join(JAVA_OPTIONS)} -jar {SERVER_JAR} "
        f"--port {port} --data {data} --stay > {log} 2>&1 & echo $!"
    )
    shell = subprocess.run(
        ["sh", "-c", command],
        env={**os.environ, "NEO4J_PASSWORD": PASSWORD},
        capture_output=True,
        text=True,
        check=True,
        timeout=30,
    )
    pid = int(shell.stdout.strip())
    deadline = time.monotonic() + START_TIMEOUT
    while f"NEO4J_URI=bolt://127.0.0.1:{port}" not in log.read_text(errors="replace"):
        if not running(pid) or time.monotonic() > deadline:
            if running(pid):
                stop(pid)  # nothing outlives the test, whatever went wrong
            pytest.fail(f"the development server did not start:\n{log.read_text()[-3000:]}")
        time.sleep(0.5)
    return pid


def running(pid: int) -> bool:
    try:
        return "zombie" not in Path(f"/proc/{pid}/status").read_text()
    except FileNotFoundError:
        return False


def stop(pid: int) -> None:
    os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + 60
    while running(pid):
        assert time.monotonic() < deadline, "the development server did not stop"
        time.sleep(0.2)


def test_dev_server_keeps_its_port_and_its_data(tmp_path: Path) -> None:
    port, data = free_port(), tmp_path / "neo4j-data"
    pid = start_dev_server(port, data, tmp_path / "first.log")
    try:
        with neo4j.GraphDatabase.driver(f"bolt://127.0.0.1:{port}", auth=("neo4j", PASSWORD)) as db:
            db.execute_query("CREATE (:Kept {name: 'still here'})")
    finally:
        stop(pid)  # it outlived the shell that started it: it had to be stopped
    assert (data / "data" / "databases" / "neo4j").is_dir()  # kept on disk

    pid = start_dev_server(port, data, tmp_path / "second.log")
    try:
        with neo4j.GraphDatabase.driver(f"bolt://127.0.0.1:{port}", auth=("neo4j", PASSWORD)) as db:
            records, _, _ = db.execute_query("MATCH (k:Kept) RETURN k.name AS name")
    finally:
        stop(pid)
    assert [r["name"] for r in records] == ["still here"]
    assert "NEO4J_PASSWORD=" not in (tmp_path / "second.log").read_text()  # it was given one
