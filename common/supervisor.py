"""`neonomaly up`: the embedded server plus every service process, stopped together.

With GRAPH_URL set to Neo4j (or an external FalkorDB), the embedded server is only Redis,
unless REDIS_URL names another one.

Children are started in order; if one exits on its own, or on Ctrl-C / SIGTERM, all are
stopped (SIGTERM, then SIGKILL after a grace period) in reverse order, the server last, so
that workers can finish their AOF-backed writes.
"""

from __future__ import annotations

import os
import secrets
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType

from common.embedded import EmbeddedServer
from common.own_metrics import MULTIPROC_DIR
from common.settings import EMBEDDED, Settings

GRACE_SECONDS = 10.0


@dataclass
class ChildSpec:
    name: str
    argv: list[str]
    url: str | None = None  # printed for the user
    env: dict[str, str] = field(default_factory=dict)


@dataclass
class UpOptions:
    host: str = "127.0.0.1"
    port: int = 8000
    flower_port: int = 5555
    data_dir: Path = Path(".neonomaly")


def child_specs(options: UpOptions, flower_auth: str) -> list[ChildSpec]:
    python = sys.executable
    celery_app = "worker.celery_app:app"
    beat_schedule = str(options.data_dir.resolve() / "celerybeat-schedule")
    flower_user = flower_auth.split(":", 1)[0]
    return [
        ChildSpec(
            "web",
            # Idle connections kept 75 s, not uvicorn's 5: Prometheus' remote write sends
            # every 5 s, and reusing a connection just as it is closed logs a reset.
            [python, "-m", "uvicorn", "web.main:app", "--host", options.host,
             "--port", str(options.port), "--timeout-keep-alive", "75"],
            url=f"http://{options.host}:{options.port}/ui   (API docs: /docs)",
        ),
        ChildSpec(
            "worker",
            [python, "-m", "celery", "-A", celery_app, "worker", "--loglevel=INFO",
             "--concurrency=2", "--hostname=worker@%h"],
        ),
        ChildSpec(
            "beat",
            [python, "-m", "celery", "-A", celery_app, "beat", "--loglevel=INFO",
             f"--schedule={beat_schedule}"],
        ),
        ChildSpec(
            "flower",
            [python, "-m", "celery", "-A", celery_app, "flower", f"--address={options.host}",
             f"--port={options.flower_port}"],
            url=f"http://{options.host}:{options.flower_port} (user {flower_user})",
            env={"FLOWER_BASIC_AUTH": flower_auth},
        ),
    ]  # fmt: skip


def own_metrics_dir(data_dir: Path) -> Path:
    """Where every child records its own metrics (/metrics adds them up), emptied at each
    start: a previous run's figures would otherwise be counted again."""
    directory = data_dir.resolve() / "own-metrics"
    directory.mkdir(parents=True, exist_ok=True)
    for stale in directory.glob("*.db"):
        stale.unlink()
    return directory


class Supervisor:
    def __init__(self, settings: Settings, options: UpOptions):
        self.settings = settings
        self.options = options
        self.server: EmbeddedServer | None = None
        self.children: list[tuple[ChildSpec, subprocess.Popen[bytes]]] = []
        self._stopping = False

    def _service_env(self) -> dict[str, str]:
        env = {**os.environ, "DATA_DIR": str(self.options.data_dir.resolve())}
        # The embedded server is the graph store by default, and Redis whenever REDIS_URL
        # is unset: GRAPH_URL=bolt://... alone runs on Neo4j with the embedded Redis.
        if self.settings.uses_embedded or self.settings.redis_url is None:
            # A data dir in use raises EmbeddedServerError: `neonomaly` prints it, exits 1.
            self.server = EmbeddedServer(self.options.data_dir).start()
            address = self.server.address
            roles = "graph store + redis" if self.settings.uses_embedded else "redis"
            print(f"embedded {roles}: {address.display_url} (data and password "
                  f"in {self.server.data_dir})", flush=True)  # fmt: skip
            # The children attach through the data dir: they read the port and the password
            # there, so the password is in no command line and no environment.
            if self.settings.uses_embedded:
                env["GRAPH_URL"] = EMBEDDED
        if not self.settings.uses_embedded:
            print(f"graph store: {self.settings.graph_url}", flush=True)
        if MULTIPROC_DIR not in env:
            env[MULTIPROC_DIR] = str(own_metrics_dir(self.options.data_dir))
        return env

    def run(self) -> int:
        # Everything the server and the children write in the data dir (AOF, RDB, beat's
        # schedule) is private to this user.
        os.umask(0o077)
        for signum in (signal.SIGINT, signal.SIGTERM):
            signal.signal(signum, self._on_signal)
        flower_auth = os.environ.get("FLOWER_BASIC_AUTH") or f"admin:{secrets.token_urlsafe(12)}"
        try:
            env = self._service_env()
            for spec in child_specs(self.options, flower_auth):
                process = subprocess.Popen(spec.argv, env={**env, **spec.env})
                self.children.append((spec, process))
            print("\nNeonomaly is up:", flush=True)
            for spec, _ in self.children:
                if spec.url:
                    print(f"  {spec.name:<7} {spec.url}", flush=True)
            if "FLOWER_BASIC_AUTH" not in os.environ:
                print(f"  flower login: {flower_auth}", flush=True)
            if self.settings.metrics_address:
                print(f"  metrics http://{self.settings.metrics_address}/metrics", flush=True)
            elif self.settings.metrics_token:
                print("  metrics /metrics on the web port (Bearer METRICS_TOKEN)", flush=True)
            # As the user invoked it (`make run` runs .venv/bin/neonomaly, not on PATH).
            command = sys.argv[0] if Path(sys.argv[0]).name == "neonomaly" else "neonomaly"
            print(f"Create an API key: {command} create-user NAME    Stop: Ctrl-C\n", flush=True)
            return self._wait()
        finally:
            self.stop()

    def _wait(self) -> int:
        while not self._stopping:
            for spec, process in self.children:
                code = process.poll()
                if code is not None:
                    print(f"{spec.name} exited with code {code}; stopping everything", flush=True)
                    return code or 1
            time.sleep(0.5)
        return 0

    def _on_signal(self, signum: int, frame: FrameType | None) -> None:
        self._stopping = True

    def stop(self) -> None:
        for _, process in reversed(self.children):
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + GRACE_SECONDS
        for spec, process in reversed(self.children):
            try:
                process.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                print(f"{spec.name} did not stop in {GRACE_SECONDS:.0f}s; killing it", flush=True)
                process.kill()
                process.wait()
        self.children.clear()
        if self.server is not None:
            self.server.stop()
            self.server = None
