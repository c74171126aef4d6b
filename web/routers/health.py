"""Liveness (no key: for load balancers) and readiness (needs a key: it names internals)."""

from fastapi import APIRouter
from fastapi.responses import JSONResponse

from common.errors import DependencyUnavailableError
from web.deps import CurrentUser, RedisDep, StoreDep
from web.schemas import AUTH_ERRORS, ErrorBody, Readiness

router = APIRouter(tags=["health"])


@router.get("/health")
def health() -> dict[str, str]:
    """The process is alive (checks nothing else)."""
    return {"status": "ok"}


@router.get(
    "/ready",
    response_model=Readiness,
    responses={
        **AUTH_ERRORS,
        # Readiness names what is down; when the graph is, the key check answers first.
        503: {"model": Readiness | ErrorBody, "description": "the graph store or Redis is down"},
    },
)
def ready(_: CurrentUser, store: StoreDep, redis_client: RedisDep) -> JSONResponse:
    """The graph store and Redis both answer; 503 names whichever does not."""
    status = {"graph": "ok", "redis": "ok"}
    try:
        store.ping()
    except DependencyUnavailableError as exc:
        status["graph"] = f"down: {exc.detail}"
    try:
        redis_client.ping()
    except Exception as exc:  # any failure to answer means not ready
        status["redis"] = f"down: {exc}"
    healthy = all(value == "ok" for value in status.values())
    return JSONResponse(status, status_code=200 if healthy else 503)
