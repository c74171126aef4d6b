"""Liveness and readiness, both without a key: for load balancers and orchestrator probes.

Neither says more than a probe needs: readiness names the dependency that is down, never
addresses or error text (those go to the log).
"""

import logging

from fastapi import APIRouter
from fastapi.responses import JSONResponse

from common.errors import DependencyUnavailableError
from common.graph.executors import GRAPH
from common.redis_errors import REDIS
from web.deps import RedisStoresDep, RepositoriesDep
from web.schemas.health import Readiness

log = logging.getLogger(__name__)
router = APIRouter(tags=["health"])


@router.get("/health")
def health() -> dict[str, str]:
    """The process is alive (checks nothing else)."""
    return {"status": "ok"}


@router.get(
    "/ready",
    response_model=Readiness,
    responses={503: {"model": Readiness, "description": "the graph store or Redis is down"}},
)
def ready(repositories: RepositoriesDep, redis_stores: RedisStoresDep) -> JSONResponse:
    """The graph store and Redis both answer: 200, else 503 naming which does not."""
    down: list[str] = []
    try:
        repositories.ping()
    except DependencyUnavailableError as exc:
        log.warning("not ready: %r", exc)
        down.append(GRAPH)
    try:
        redis_stores.client.ping()
    except Exception as exc:  # any failure to answer means not ready
        log.warning("not ready: redis: %s", exc)
        down.append(REDIS)
    if down:
        body = Readiness(status="unavailable", down=down)
        return JSONResponse(body.model_dump(), status_code=503, headers={"Retry-After": "5"})
    return JSONResponse(Readiness(status="ready", down=[]).model_dump())
