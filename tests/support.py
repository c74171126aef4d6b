"""Helpers shared by tests and benchmarks: start the app as a real uvicorn process."""

from __future__ import annotations

import socket
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import TYPE_CHECKING

import httpx
from pydantic import SecretStr

from common.embedded import EmbeddedServer
from common.settings import Settings

if TYPE_CHECKING:
    from tests.neo4j_server import Neo4jServer

ROOT = Path(__file__).resolve().parent.parent


def settings_for(server: EmbeddedServer, neo4j: Neo4jServer | None = None) -> Settings:
    """Settings pointing at a test's own embedded server, ignoring any .env file.

    With `neo4j`, the graph store is that Neo4j server and the embedded server is only Redis.
    """
    graph: dict[str, object] = {"graph_url": server.graph_url}
    if neo4j is not None:
        graph = {
            "graph_url": neo4j.uri,
            "neo4j_user": neo4j.user,
            "neo4j_password": SecretStr(neo4j.password),
            "neo4j_database": neo4j.database,
        }
    return Settings(
        **graph,  # type: ignore[arg-type]
        redis_url=server.redis_url,
        data_dir=server.data_dir,
        _env_file=None,
    )


def unique_name(prefix: str) -> str:
    """A user name no other test uses (user names are unique in a store)."""
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class AppServer:
    def __init__(self, base_url: str, process: subprocess.Popen[bytes]):
        self.base_url = base_url
        self.process = process


def start_app(
    env: dict[str, str],
    extra_env: dict[str, str] | None = None,
    workers: int = 1,
    root: Path = ROOT,
) -> AppServer:
    """uvicorn (with `workers` processes) on 127.0.0.1, waited for until /health answers.
    `root`: the checkout whose app runs (a benchmark runs another commit's beside this one)."""
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "uvicorn", "web.main:app", "--host", "127.0.0.1",
         "--port", str(port), "--workers", str(workers), "--log-level", "warning"],
        env={**env, **(extra_env or {}), **({} if root == ROOT else {"PYTHONPATH": str(root)})},
        cwd=root,
    )  # fmt: skip
    base_url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while True:
        try:
            if httpx.get(f"{base_url}/health", timeout=1).status_code == 200:
                return AppServer(base_url, process)
        except httpx.TransportError:
            pass
        if process.poll() is not None or time.monotonic() > deadline:
            process.kill()
            raise RuntimeError("the web app did not start; see its output above")
        time.sleep(0.1)


def stop_app(app: AppServer) -> None:
    app.process.terminate()
    try:
        app.process.wait(10)
    except subprocess.TimeoutExpired:
        app.process.kill()
