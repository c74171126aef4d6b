"""`GET /metrics`: Neonomaly's own metrics in Prometheus' text format, for the operator.

Off unless configured (see Settings: METRICS_TOKEN, METRICS_ADDRESS): on the API's port it
answers only to `Authorization: Bearer METRICS_TOKEN`, never to a user's API key, so it is
never public by accident.
"""

from __future__ import annotations

import hmac
import logging
from collections.abc import Iterator

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest

from common.own_metrics import scrape_registry
from common.queue import queue_depth
from common.settings import Settings
from common.stores import RedisStores

log = logging.getLogger(__name__)
router = APIRouter(tags=["health"])
OWN_METRICS_PATH = "/metrics"


def registry_for(settings: Settings, redis_stores: RedisStores) -> CollectorRegistry:
    """Every process's metrics, plus the queue depth read from the broker at each scrape."""

    def read_gauges() -> Iterator[tuple[str, str, dict[str, str], float]]:
        queues = (settings.job_queue, settings.sweep_queue, settings.delivery_queue)
        try:
            depths = {queue: queue_depth(redis_stores.client, queue) for queue in queues}
        except Exception as exc:  # a scrape still answers; the gauge is left out
            log.warning("queue depth not read: %s", exc)
            return
        for queue, depth in depths.items():
            yield (
                "neonomaly_queue_depth",
                "Tasks waiting in a Celery queue: jobs, sweeps, webhook deliveries",
                {"queue": queue},
                float(depth),
            )

    return scrape_registry(read_gauges)


@router.get(OWN_METRICS_PATH, include_in_schema=False)
def own_metrics(request: Request) -> Response:
    """Neonomaly's own metrics (Prometheus text format), to METRICS_TOKEN only."""
    settings: Settings = request.app.state.settings
    token = settings.metrics_token.get_secret_value() if settings.metrics_token else ""
    if not token:
        # Where they are instead, but not the private address: this answer needs no key.
        detail = (
            "metrics are served on their own listener (METRICS_ADDRESS), not on this port: "
            "set METRICS_TOKEN to serve them here too, to that bearer token"
            if settings.metrics_address
            else "metrics are not served on this port: set METRICS_TOKEN (then scrape with "
            "that bearer token) or METRICS_ADDRESS (a private listener)"
        )
        return JSONResponse({"detail": detail}, status_code=404)
    sent = request.headers.get("authorization", "")
    if not hmac.compare_digest(sent.encode(), f"Bearer {token}".encode()):
        return JSONResponse(
            {"detail": "send Authorization: Bearer METRICS_TOKEN (not a user's API key)"},
            status_code=401,
            headers={"WWW-Authenticate": "Bearer"},
        )
    registry = registry_for(settings, request.app.state.redis_stores)
    return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)
