"""A real Neo4j 5.26 for tests and benchmarks: tools/neo4j-server, built by `make neo4j`.

`NEO4J_TEST_URI` (with `NEO4J_TEST_USER`, `NEO4J_TEST_PASSWORD`, `NEO4J_TEST_DATABASE`)
points at an external Neo4j instead, and nothing is started.
"""

from __future__ import annotations

import os
import secrets
import shutil
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

from tests.support import ROOT

SERVER_JAR = ROOT / "tools" / "neo4j-server" / "target" / "neo4j-test-server.jar"
# Cold JVM plus Cypher's first compilations, on 2 cores shared with the rest of the suite:
# about 15 s idle, 50 s seen under load.
START_TIMEOUT = 180.0
# Small enough for a 2-core, 24 GiB machine running the rest of the suite beside it;
# the 8 x 500 concurrent appends and 100k-reading window reads fit.
JAVA_OPTIONS = ("-Xms128m", "-Xmx768m", "-XX:+UseSerialGC")
PAGE_CACHE_MIB = "128"


class Neo4jUnavailableError(Exception):
    """No Neo4j can be had here; the message says why and what to do."""


@dataclass
class Neo4jServer:
    uri: str
    user: str
    password: str
    database: str = "neo4j"
    process: subprocess.Popen[bytes] | None = None  # None: an external server
    log_path: Path | None = None

    def graph_env(self) -> dict[str, str]:
        """The settings' environment variables that point the app at this server."""
        return {
            "GRAPH_URL": self.uri,
            "NEO4J_USER": self.user,
            "NEO4J_PASSWORD": self.password,
            "NEO4J_DATABASE": self.database,
        }

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path else ""

    def stop(self) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        self.process.terminate()  # the server shuts the DBMS down and deletes its data
        try:
            self.process.wait(60)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


def why_not_buildable() -> str | None:
    """Why tools/neo4j-server cannot be built here, or None if it can."""
    missing = [tool for tool in ("java", "mvn") if shutil.which(tool) is None]
    if missing:
        return f"{' and '.join(missing)} not found on PATH (Neo4j needs Java 17+ and Maven)"
    return None


def start_neo4j(log_dir: Path) -> Neo4jServer:
    """The external NEO4J_TEST_URI, or the built test server started and waited for."""
    uri = os.environ.get("NEO4J_TEST_URI")
    if uri:
        return Neo4jServer(
            uri=uri,
            user=os.environ.get("NEO4J_TEST_USER", "neo4j"),
            password=os.environ.get("NEO4J_TEST_PASSWORD", ""),
            database=os.environ.get("NEO4J_TEST_DATABASE", "neo4j"),
        )
    if not SERVER_JAR.exists():
        reason = why_not_buildable() or "tools/neo4j-server is not built: run `make neo4j`"
        raise Neo4jUnavailableError(reason)
    java = shutil.which("java")
    if java is None:
        raise Neo4jUnavailableError("java not found on PATH")
    password = secrets.token_hex(16)
    log_path = log_dir / "neo4j-test-server.log"
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [java, *JAVA_OPTIONS, "-jar", str(SERVER_JAR)],
            env={**os.environ, "NEO4J_PASSWORD": password, "NEO4J_PAGECACHE_MIB": PAGE_CACHE_MIB},
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
        )
    server = Neo4jServer(
        uri="", user="neo4j", password=password, process=process, log_path=log_path
    )
    deadline = time.monotonic() + START_TIMEOUT
    while True:
        for line in server.log().splitlines():
            if line.startswith("NEO4J_URI="):
                server.uri = line.removeprefix("NEO4J_URI=").strip()
                return server
        if process.poll() is not None or time.monotonic() > deadline:
            server.stop()
            raise Neo4jUnavailableError(
                f"the Neo4j test server did not start in {START_TIMEOUT:.0f}s "
                f"(exit code {process.poll()}):\n{server.log()[-3000:]}"
            )
        time.sleep(0.2)
