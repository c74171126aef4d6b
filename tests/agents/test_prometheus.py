"""A real Prometheus (Debian's) remote-writing a real node exporter's metrics to a running
Neonomaly with a user's key, and scraping Neonomaly's own /metrics.

Everything listens on 127.0.0.1 at free ports, with its config and data in a temp dir.
`make test` installs prometheus and prometheus-node-exporter when missing and root (as in
CI); elsewhere these tests skip, saying so.
"""

from __future__ import annotations

import secrets
import shutil
import subprocess
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from common.users.models import User
from tests.agents_support import metrics_of, readings_of
from tests.support import AppServer, free_port, start_app, stop_app
from tests.worker.support import WorkerProcess, poll_job, start_worker, stop_worker, wait_for

PROMETHEUS = shutil.which("prometheus")
NODE_EXPORTER = shutil.which("prometheus-node-exporter")
pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        not (PROMETHEUS and NODE_EXPORTER),
        reason="prometheus and prometheus-node-exporter are not installed "
        "(`make test` installs them as root: apt-get install prometheus prometheus-node-exporter)",
    ),
]
ARRIVAL_TIMEOUT = 120.0  # Prometheus reads its WAL and sends every few seconds
CPU_IDLE = 'node_cpu_seconds_total{cpu="0",instance="%s",mode="idle"}'


@dataclass
class Stack:
    app: AppServer
    http: httpx.Client  # as the user whose key Prometheus sends
    prometheus_url: str
    node_target: str
    metrics_token: str
    worker: WorkerProcess


def spawn(command: list[str], log: Path) -> subprocess.Popen[bytes]:
    with log.open("wb") as out:
        return subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT)


def stop(process: subprocess.Popen[bytes]) -> None:
    process.terminate()
    try:
        process.wait(15)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def prometheus_config(app_port: int, node_target: str, key: str, token: str) -> dict[str, Any]:
    """The README's remote_write and scrape_configs blocks, with a 1 s scrape interval."""
    return {
        "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
        "scrape_configs": [
            {"job_name": "node", "static_configs": [{"targets": [node_target]}]},
            {
                "job_name": "neonomaly",
                "authorization": {"credentials": token},
                "static_configs": [{"targets": [f"127.0.0.1:{app_port}"]}],
            },
        ],
        "remote_write": [
            {
                "url": f"http://127.0.0.1:{app_port}/api/v1/write",
                "authorization": {"credentials": key},
                # Only what these tests look at: a node exporter has hundreds of series.
                "write_relabel_configs": [
                    {
                        "source_labels": ["__name__"],
                        "regex": "node_load1|node_memory_MemAvailable_bytes|node_cpu_seconds_total",
                        "action": "keep",
                    }
                ],
                "queue_config": {"batch_send_deadline": "1s", "max_backoff": "1s"},
                "metadata_config": {"send_interval": "2s"},
            }
        ],
    }


@pytest.fixture(scope="module")
def stack(
    service_env: dict[str, str],
    make_user: Callable[..., tuple[User, str]],
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Stack]:
    assert PROMETHEUS and NODE_EXPORTER
    tmp = tmp_path_factory.mktemp("prometheus")
    multiproc = tmp / "own-metrics"
    multiproc.mkdir()
    token = secrets.token_hex(16)
    # Web and worker record into one multiprocess dir, so /metrics shows both.
    extra = {
        "METRICS_TOKEN": token,
        "PROMETHEUS_MULTIPROC_DIR": str(multiproc),
        "JOB_QUEUE": "neonomaly.prometheus-test",
    }
    worker = start_worker({**service_env, **extra}, tmp)
    app = start_app(service_env, extra)
    app_port = int(app.base_url.rsplit(":", 1)[1])
    _, key = make_user("prometheus")
    node_target = f"127.0.0.1:{free_port()}"
    node = spawn(
        [NODE_EXPORTER, f"--web.listen-address={node_target}", "--collector.disable-defaults",
         "--collector.cpu", "--collector.loadavg", "--collector.meminfo"],
        tmp / "node-exporter.log",
    )  # fmt: skip
    config = tmp / "prometheus.yml"
    config.write_text(yaml.safe_dump(prometheus_config(app_port, node_target, key, token)))
    prometheus_port = free_port()
    prometheus = spawn(
        [PROMETHEUS, f"--config.file={config}", f"--storage.tsdb.path={tmp / 'data'}",
         f"--web.listen-address=127.0.0.1:{prometheus_port}"],
        tmp / "prometheus.log",
    )  # fmt: skip
    http = httpx.Client(base_url=app.base_url, headers={"X-API-Key": key}, timeout=30)
    try:
        yield Stack(app, http, f"http://127.0.0.1:{prometheus_port}", node_target, token, worker)
    finally:
        http.close()
        for process in (prometheus, node):
            stop(process)
        stop_app(app)
        stop_worker(worker)
        if prometheus.returncode not in (0, -15):
            print((tmp / "prometheus.log").read_text()[-3000:])


def arrived(stack: Stack, count: int) -> Callable[[], dict[str, dict[str, Any]] | None]:
    """All three metrics in service "node", each with at least `count` readings."""
    wanted = [
        f'node_load1{{instance="{stack.node_target}"}}',
        f'node_memory_MemAvailable_bytes{{instance="{stack.node_target}"}}',
        CPU_IDLE % stack.node_target,
    ]

    def check() -> dict[str, dict[str, Any]] | None:
        metrics = metrics_of(stack.http, "node")
        if not all(name in metrics for name in wanted):
            return None
        if any(len(readings_of(stack.http, metrics[name]["id"])) < count for name in wanted):
            return None
        return {name: metrics[name] for name in wanted}

    return check


def test_node_exporter_metrics_arrive_with_readings_and_a_job_judges_them(stack: Stack) -> None:
    metrics = wait_for(arrived(stack, 8), ARRIVAL_TIMEOUT, "node exporter readings", interval=1)
    load, memory, idle = metrics.values()
    assert all(v >= 0 for _, v in readings_of(stack.http, load["id"]))
    assert all(v > 1e6 for _, v in readings_of(stack.http, memory["id"]))  # bytes, as sent
    # A counter arrives as its per-second rate: an idle CPU's seconds grow by at most one
    # per second (Prometheus' own rate() would say the same), never the raw total.
    rates = [v for _, v in readings_of(stack.http, idle["id"])]
    assert all(0 <= v <= 1.5 for v in rates), rates

    submitted = stack.http.post(
        "/api/metrics/anomaly-detection",
        json={"metric_id": load["id"], "method": "rolling", "window": 5},
    )
    assert submitted.status_code == 202, submitted.text
    job = poll_job(stack.http, submitted.json()["job_id"], timeout=90)
    assert job["status"] == "succeeded", job
    assert job["summary"]["points"] >= 8


def test_prometheus_scrapes_neonomaly_metrics_and_reports_the_target_up(stack: Stack) -> None:
    def neonomaly_up() -> bool:
        targets = httpx.get(f"{stack.prometheus_url}/api/v1/targets", timeout=5).json()
        return any(
            t["labels"]["job"] == "neonomaly" and t["health"] == "up"
            for t in targets["data"]["activeTargets"]
        )

    wait_for(neonomaly_up, 60, "Prometheus to report the neonomaly target up", interval=0.5)

    def ingested() -> float:
        query = httpx.get(
            f"{stack.prometheus_url}/api/v1/query",
            params={"query": 'sum(neonomaly_readings_ingested_total{path="remote_write"})'},
            timeout=5,
        ).json()
        result = query["data"]["result"]
        return float(result[0]["value"][1]) if result else 0.0

    # Neonomaly's count of what Prometheus sent it, as Prometheus scraped it.
    wait_for(lambda: ingested() > 0, 90, "readings ingested by remote_write", interval=1)


def test_metrics_need_the_token(stack: Stack) -> None:
    url = f"{stack.app.base_url}/metrics"
    assert httpx.get(url).status_code == 401
    user_key = stack.http.headers["X-API-Key"]
    assert httpx.get(url, headers={"Authorization": f"Bearer {user_key}"}).status_code == 401
    scraped = httpx.get(url, headers={"Authorization": f"Bearer {stack.metrics_token}"})
    assert scraped.status_code == 200
    assert scraped.headers["content-type"].startswith("text/plain")
    text = scraped.text
    assert 'neonomaly_http_requests_total{method="POST",route="/api/v1/write",status="204"}' in text
    assert "neonomaly_queue_depth" in text


def test_worker_figures_show_in_the_web_s_metrics(stack: Stack) -> None:
    metrics = wait_for(arrived(stack, 6), ARRIVAL_TIMEOUT, "node readings", interval=1)
    submitted = stack.http.post(
        "/api/metrics/anomaly-detection",
        json={"metric_id": next(iter(metrics.values()))["id"], "method": "rolling", "window": 5},
    )
    poll_job(stack.http, submitted.json()["job_id"], timeout=90)
    headers = {"Authorization": f"Bearer {stack.metrics_token}"}

    def job_counted() -> bool:
        text = httpx.get(f"{stack.app.base_url}/metrics", headers=headers).text
        return 'neonomaly_jobs_total{kind="detect",status="succeeded"}' in text

    wait_for(job_counted, 30, "the worker's job count in /metrics", interval=0.5)
    text = httpx.get(f"{stack.app.base_url}/metrics", headers=headers).text
    assert 'neonomaly_detector_seconds_per_reading_count{method="rolling"}' in text
