"""`neonomaly up`: the embedded server plus every service process, stopped together.

With GRAPH_URL set to Neo4j (or an external FalkorDB), the embedded server is only Redis,
unless REDIS_URL names another one.

Children are started in order: web, the jobs' worker, the deliveries' worker, the sweeper,
beat, and Flower once the workers answer a ping (Flower asks the workers who they are once,
when it starts: started earlier, it would list none until asked again). If one exits on its own,
or on Ctrl-C / SIGTERM, all are stopped (SIGTERM, then SIGKILL after a grace period) in
reverse order, the server last, so that workers can finish their AOF-backed writes.
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

from celery import Celery

from common.embedded import EmbeddedServer, die_with_parent, resolve_urls
from common.own_metrics import MULTIPROC_DIR
from common.queue import producer_app
from common.settings import EMBEDDED, Settings

# A worker's warm shutdown first finishes the tasks it runs (idle, 5-6 s here; more on a busy
# machine). Jobs are acknowledged late, so one killed after this runs again on the next start.
GRACE_SECONDS = 30.0
# How long Flower waits for the workers to answer before it starts anyway.
WORKERS_READY_SECONDS = 90.0
# The worker processes' names: Flower lists them as NAME@host.
JOBS_WORKER, DELIVERIES_WORKER, SWEEPER = "worker", "deliveries", "sweeper"


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


CELERY_APP = "worker.celery_app:app"


def child_specs(settings: Settings, options: UpOptions) -> list[ChildSpec]:
    """Every child but Flower, in start order."""
    python = sys.executable
    beat_schedule = str(options.data_dir.resolve() / "celerybeat-schedule")
    return [
        ChildSpec(
            "web",
            # Idle connections kept 75 s, not uvicorn's 5: Prometheus' remote write sends
            # every 5 s, and reusing a connection just as it is closed logs a reset.
            [python, "-m", "uvicorn", "web.main:app", "--host", options.host,
             "--port", str(options.port), "--timeout-keep-alive", "75"],
            url=f"http://{options.host}:{options.port}/ui   (API docs: /docs)",
        ),
        # Detection jobs, and sweep batches beside them: CPU-bound, one process per core.
        ChildSpec(
            JOBS_WORKER,
            [python, "-m", "celery", "-A", CELERY_APP, "worker", "--loglevel=INFO",
             "--concurrency=2", f"--hostname={JOBS_WORKER}@%h",
             f"--queues={settings.job_queue},{settings.sweep_queue}"],
        ),
        # Webhook deliveries: waiting on receivers (each attempt at most
        # WEBHOOK_TIMEOUT_SECONDS), apart so that slow receivers never hold up a job.
        ChildSpec(
            DELIVERIES_WORKER,
            [python, "-m", "celery", "-A", CELERY_APP, "worker", "--loglevel=INFO",
             "--concurrency=2", f"--hostname={DELIVERIES_WORKER}@%h",
             f"--queues={settings.delivery_queue}"],
        ),
        # Takes only the sweep queue (scans, the incident sweep): periodic work never waits
        # behind long jobs, which the worker above runs beside sweeps (common.queue).
        ChildSpec(
            SWEEPER,
            [python, "-m", "celery", "-A", CELERY_APP, "worker", "--loglevel=INFO",
             "--concurrency=1", f"--queues={settings.sweep_queue}", f"--hostname={SWEEPER}@%h"],
        ),
        ChildSpec(
            "beat",
            [python, "-m", "celery", "-A", CELERY_APP, "beat", "--loglevel=INFO",
             f"--schedule={beat_schedule}"],
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


def flower_spec(options: UpOptions, flower_auth: str) -> ChildSpec:
    flower_user = flower_auth.split(":", 1)[0]
    return ChildSpec(
        "flower",
        [sys.executable, "-m", "celery", "-A", CELERY_APP, "flower",
         f"--address={options.host}", f"--port={options.flower_port}"],
        url=f"http://{options.host}:{options.flower_port} (user {flower_user})",
        env={"FLOWER_BASIC_AUTH": flower_auth},
    )  # fmt: skip


def answering_workers(app: Celery) -> set[str]:
    """The names (NAME of NAME@host) of the workers that answer a ping now."""
    replies = app.control.ping(timeout=1.0)
    return {hostname.split("@", 1)[0] for reply in replies for hostname in reply}


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
            # The children attach through the data dir: they read the port and the password
            # there, so the password is in no command line and no environment.
            if self.settings.uses_embedded:
                env["GRAPH_URL"] = EMBEDDED
        if MULTIPROC_DIR not in env:
            env[MULTIPROC_DIR] = str(own_metrics_dir(self.options.data_dir))
        return env

    def _stores(self) -> list[tuple[str, str]]:
        """The banner's lines on where the data is."""
        lines = []
        if not self.settings.uses_embedded:
            lines.append(("graph", self.settings.graph_url))
        if self.server is not None:
            roles = "graph store + redis" if self.settings.uses_embedded else "redis"
            lines.append(
                ("store", f"{self.server.address.display_url}, embedded {roles} (data and "
                 f"password in {self.server.data_dir})")
            )  # fmt: skip
        return lines

    def run(self) -> int:
        # Everything the server and the children write in the data dir (AOF, RDB, beat's
        # schedule) is private to this user.
        os.umask(0o077)
        for signum in (signal.SIGINT, signal.SIGTERM):
            signal.signal(signum, self._on_signal)
        flower_auth = os.environ.get("FLOWER_BASIC_AUTH") or f"admin:{secrets.token_urlsafe(12)}"
        try:
            env = self._service_env()
            for spec in child_specs(self.settings, self.options):
                self._start(spec, env)
            self._wait_for_workers()
            if not self._stopping:
                self._start(flower_spec(self.options, flower_auth), env)
            # Nothing of its own before this: the children's logs come first, then the banner.
            print("\nNeonomaly is up:", flush=True)
            for spec, _ in self.children:
                if spec.url:
                    print(f"  {spec.name:<7} {spec.url}", flush=True)
            if "FLOWER_BASIC_AUTH" not in os.environ:
                print(f"  flower login: {flower_auth}", flush=True)
            for name, where in self._stores():
                print(f"  {name:<7} {where}", flush=True)
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

    def _start(self, spec: ChildSpec, env: dict[str, str]) -> None:
        # Its own process group: Ctrl-C reaches only this supervisor, which stops each child
        # once (SIGTERM, a warm shutdown). A second signal straight from the terminal made
        # uvicorn cancel its lifespan (a traceback) and Celery's pool stop uncleanly.
        process = subprocess.Popen(
            spec.argv,
            env={**env, **spec.env},
            process_group=0,
            preexec_fn=die_with_parent,  # noqa: PLW1509
        )
        self.children.append((spec, process))

    def _wait_for_workers(self) -> None:
        """Until every worker answers a ping, a child exits, or Ctrl-C (at most a while)."""
        settings = self.settings.model_copy(update={"data_dir": self.options.data_dir})
        app = producer_app(settings, resolve_urls(settings).redis_url)
        deadline = time.monotonic() + WORKERS_READY_SECONDS
        try:
            while not self._stopping and all(p.poll() is None for _, p in self.children):
                if {JOBS_WORKER, DELIVERIES_WORKER, SWEEPER} <= answering_workers(app):
                    return
                if time.monotonic() > deadline:
                    print("the workers have not answered yet: Flower lists them once they "
                          "do (/api/workers?refresh=1)", flush=True)  # fmt: skip
                    return
        finally:
            app.close()

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
