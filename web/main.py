"""The FastAPI app: `uvicorn web.main:app` (or the factory `web.main:create_app`)."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import redis
import redis.asyncio
from fastapi import FastAPI

from common.embedded import resolve_urls
from common.errors import DependencyUnavailableError
from common.jobs.waits import JobWaiter
from common.queue import JobQueue, producer_app
from common.settings import Settings, get_settings
from common.stores import connect_graph, redis_stores
from web.deps import authenticate_key
from web.errors import ApiKeyRequired, BodySizeLimit, install_error_handlers
from web.routers import (
    anomalies,
    detection,
    health,
    incidents,
    jobs,
    metrics,
    notifications,
    readings,
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
    try:
        app.state.repositories.ensure_schema()
    except DependencyUnavailableError as exc:
        # Serve anyway: requests answer 503 until the graph store is back, and the
        # schema statements are idempotent, so the next start creates what is missing.
        log.warning("graph store unavailable at startup, schema not checked: %r", exc)
    yield
    app.state.repositories.close()
    app.state.redis_stores.close()
    await app.state.redis_async.aclose()
    app.state.job_queue.app.close()


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
    # Added last, so it runs first: no valid key, no body parsing or size check.
    public = {"/health", "/ready", UI_PREFIX, app.docs_url, app.redoc_url, app.openapi_url}
    public.add(app.swagger_ui_oauth2_redirect_url)
    app.add_middleware(
        ApiKeyRequired,
        public_paths=frozenset(p for p in public if p),
        authenticate=authenticate_key,
        public_prefixes=(f"{UI_PREFIX}/",),  # the dashboard's files: no data in them
    )
    app.include_router(health.router)
    app.include_router(services.router)
    app.include_router(metrics.router)
    app.include_router(readings.router)
    app.include_router(series.router)
    app.include_router(detection.router)
    app.include_router(jobs.router)
    app.include_router(incidents.router)
    app.include_router(anomalies.router)
    app.include_router(notifications.router)
    mount_ui(app)
    return app


app = create_app()
