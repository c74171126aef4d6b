"""The FastAPI app: `uvicorn web.main:app` (or the factory `web.main:create_app`)."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from wsgiref.simple_server import WSGIServer

import redis
import redis.asyncio
from fastapi import FastAPI
from prometheus_client import start_http_server

from common.agents.counters import CounterBases, MetricTypes
from common.agents.receiver import AgentLimits, AgentReceiver
from common.collector import freeze_startup_objects
from common.embedded import resolve_urls
from common.errors import DependencyUnavailableError
from common.ingestion.service import ingest_limits
from common.jobs.waits import JobWaiter
from common.queue import JobQueue, producer_app
from common.settings import Settings, get_settings
from common.stores import RedisStores, Repositories, connect_graph, redis_stores
from web.deps import authenticate_key
from web.errors import ApiKeyRequired, BodySizeLimit, install_error_handlers
from web.instrumentation import RequestMetrics
from web.routers import (
    agents,
    anomalies,
    detection,
    health,
    incidents,
    jobs,
    maintenance,
    metrics,
    notifications,
    own_metrics,
    readings,
    scans,
    series,
    services,
)
from web.routers.ui import UI_PREFIX, mount_ui

log = logging.getLogger(__name__)

DESCRIPTION = """
Anomaly detection for server metrics. Users own services, services monitor metrics, and
each metric keeps its readings as a time-ordered chain in a graph. Detection runs as
background jobs (rolling statistics or STL): submit, poll, fetch the result.

Every endpoint except `/health`, `/ready` and these docs needs an API key, sent as
`X-API-Key: KEY` or `Authorization: Bearer KEY` (`neonomaly create-user NAME` makes one).
Timestamps are ISO 8601; without an offset they are taken as UTC.
"""


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    settings: Settings = app.state.settings
    urls = resolve_urls(settings)
    # First: invalid job settings (time limits) stop the start, not the first submit.
    app.state.job_queue = JobQueue(producer_app(settings, urls.redis_url))
    app.state.repositories = connect_graph(settings)
    app.state.redis_stores = redis_stores(
        redis.Redis.from_url(urls.redis_url, socket_connect_timeout=2, socket_timeout=10),
        settings,
    )
    # Each wait holds a pub/sub connection and briefly borrows another to read its job; a
    # blocking pool makes a read beyond that wait its turn instead of failing.
    app.state.redis_async = redis.asyncio.Redis.from_pool(
        redis.asyncio.BlockingConnectionPool.from_url(
            urls.redis_url,
            max_connections=2 * settings.max_waiting_requests + 10,
            timeout=10,
            socket_connect_timeout=2,
            socket_timeout=10,
        )
    )
    app.state.job_waiter = JobWaiter(app.state.redis_async, settings.max_waiting_requests)
    app.state.agent_receiver = agent_receiver(
        app.state.repositories, app.state.redis_stores, settings
    )
    metrics_listener = (
        serve_own_metrics(settings, app.state.redis_stores) if settings.metrics_address else None
    )
    try:
        app.state.repositories.ensure_schema()
    except DependencyUnavailableError as exc:
        # Serve anyway: requests answer 503 until the graph store is back, and the
        # schema statements are idempotent, so the next start creates what is missing.
        log.warning("graph store unavailable at startup, schema not checked: %r", exc)
    freeze_startup_objects()
    yield
    if metrics_listener is not None:
        metrics_listener.shutdown()
    app.state.repositories.close()
    app.state.redis_stores.close()
    await app.state.redis_async.aclose()
    app.state.job_queue.app.close()


def agent_receiver(
    repositories: Repositories, redis_stores: RedisStores, settings: Settings
) -> AgentReceiver:
    client = redis_stores.client
    return AgentReceiver(
        metrics=repositories.metrics,
        readings=repositories.readings,
        counter_bases=CounterBases(client, settings.agent_counter_ttl_seconds),
        metric_types=MetricTypes(client, settings.agent_counter_ttl_seconds),
        limits=AgentLimits(
            max_decoded_bytes=settings.agent_max_decoded_bytes,
            max_samples=settings.agent_max_samples_per_request,
            max_readings_per_write=settings.max_batch_readings,
            ingest=ingest_limits(settings),
        ),
    )


def serve_own_metrics(settings: Settings, redis_stores: RedisStores) -> WSGIServer | None:
    """/metrics without a token on METRICS_ADDRESS, a listener of its own. With several web
    processes the first to bind serves everyone's figures (multiprocess mode); the others
    find the address taken and leave it to that one."""
    host, _, port = (settings.metrics_address or "").rpartition(":")
    registry = own_metrics.registry_for(settings, redis_stores)
    try:
        server, _ = start_http_server(int(port), addr=host.strip("[]"), registry=registry)
    except OSError as exc:
        log.info("metrics listener %s not started here: %s", settings.metrics_address, exc)
        return None
    log.info("serving /metrics on http://%s/metrics", settings.metrics_address)
    return server


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or get_settings()
    logging.basicConfig(
        level=settings.log_level, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    app = FastAPI(
        title="Neonomaly",
        version="0.1.0",
        description=DESCRIPTION,
        lifespan=lifespan,
    )
    app.state.settings = settings
    install_error_handlers(app)
    app.add_middleware(BodySizeLimit, max_bytes=settings.max_body_bytes)
    # Runs before the routes: no valid key, no body parsing or size check. /metrics checks
    # its own token (METRICS_TOKEN), never a user's key.
    public = {"/health", "/ready", UI_PREFIX, app.docs_url, app.redoc_url, app.openapi_url}
    public.add(own_metrics.OWN_METRICS_PATH)
    public.add(app.swagger_ui_oauth2_redirect_url)
    app.add_middleware(
        ApiKeyRequired,
        public_paths=frozenset(p for p in public if p),
        authenticate=authenticate_key,
        public_prefixes=(f"{UI_PREFIX}/",),  # the dashboard's files: no data in them
    )
    # Outermost: counts every answer, the 401s and 413s of the middlewares above included.
    app.add_middleware(RequestMetrics)
    app.include_router(health.router)
    app.include_router(services.router)
    app.include_router(metrics.router)
    app.include_router(readings.router)
    app.include_router(series.router)
    app.include_router(detection.router)
    app.include_router(jobs.router)
    app.include_router(scans.router)
    app.include_router(incidents.router)
    app.include_router(anomalies.router)
    app.include_router(notifications.router)
    app.include_router(maintenance.router)
    app.include_router(agents.router)
    app.include_router(own_metrics.router)
    mount_ui(app)
    return app


app = create_app()
