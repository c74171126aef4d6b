"""Request dependencies: the clients the lifespan opened, the caller, owned objects, and
a succeeded job's stored result."""

from __future__ import annotations

from typing import Annotated

import redis
from fastapi import Depends, HTTPException, Path, Request
from fastapi.security import APIKeyHeader, HTTPAuthorizationCredentials, HTTPBearer

from common.auth import hash_api_key
from common.errors import ConflictError, NotFoundError
from common.graph.store import GraphStore
from common.jobs.models import JobRecord
from common.jobs.queue import JobQueue
from common.jobs.record_store import JobStore
from common.jobs.result_store import ResultStore
from common.jobs.results import PointColumns, ResultMeta
from common.jobs.waits import JobWaiter
from common.models import Metric, Service, User
from common.settings import Settings
from web.errors import MISSING_KEY, UnauthorizedError
from web.schemas import NO_CONTROL


def get_store(request: Request) -> GraphStore:
    store: GraphStore = request.app.state.store
    return store


def get_redis(request: Request) -> redis.Redis:
    client: redis.Redis = request.app.state.redis
    return client


def get_settings(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


StoreDep = Annotated[GraphStore, Depends(get_store)]
RedisDep = Annotated[redis.Redis, Depends(get_redis)]
SettingsDep = Annotated[Settings, Depends(get_settings)]

# auto_error=False: a missing key is our 401 with our message, not FastAPI's 403.
api_key_header = APIKeyHeader(name="X-API-Key", auto_error=False)
bearer = HTTPBearer(auto_error=False)


def get_current_user(
    store: StoreDep,
    api_key: Annotated[str | None, Depends(api_key_header)],
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)],
) -> User:
    key = api_key or (credentials.credentials if credentials else None)
    if not key:
        raise UnauthorizedError(MISSING_KEY)
    user = store.find_user_by_key_hash(hash_api_key(key))
    if user is None:
        raise UnauthorizedError("invalid API key")
    return user


CurrentUser = Annotated[User, Depends(get_current_user)]


# Ids in paths are checked like every other string that reaches a Cypher parameter.
PathId = Annotated[str, Path(min_length=1, max_length=200, pattern=NO_CONTROL)]


def get_owned_service(service_id: PathId, user: CurrentUser, store: StoreDep) -> Service:
    service = store.get_service(user.id, service_id)
    if service is None:
        raise NotFoundError(f"service {service_id} not found")
    return service


def get_owned_metric(metric_id: PathId, user: CurrentUser, store: StoreDep) -> Metric:
    metric = store.get_metric(user.id, metric_id)
    if metric is None:
        raise NotFoundError(f"metric {metric_id} not found")
    return metric


OwnedService = Annotated[Service, Depends(get_owned_service)]
OwnedMetric = Annotated[Metric, Depends(get_owned_metric)]


def get_job_store(client: RedisDep, settings: SettingsDep) -> JobStore:
    return JobStore.from_settings(client, settings)


def get_result_store(client: RedisDep, settings: SettingsDep) -> ResultStore:
    return ResultStore.from_settings(client, settings)


def get_job_queue(request: Request) -> JobQueue:
    """The web process's Celery producer (made by the lifespan)."""
    queue: JobQueue = request.app.state.job_queue
    return queue


def get_job_waiter(request: Request) -> JobWaiter:
    waiter: JobWaiter = request.app.state.job_waiter
    return waiter


JobStoreDep = Annotated[JobStore, Depends(get_job_store)]
ResultStoreDep = Annotated[ResultStore, Depends(get_result_store)]
JobQueueDep = Annotated[JobQueue, Depends(get_job_queue)]
JobWaiterDep = Annotated[JobWaiter, Depends(get_job_waiter)]


def job_url(job_id: str) -> str:
    return f"/api/jobs/{job_id}"


def read_result(
    results: ResultStore,
    record: JobRecord,
    offset: int = 0,
    limit: int | None = None,
    *,
    window: tuple[int, int] | None = None,
) -> tuple[ResultMeta, PointColumns]:
    """A succeeded job's result: its meta and points [offset, offset + limit) (all without
    a limit), or with `window` (epoch ms, end exclusive) the points of the chunks that hold
    that time window. 409 if the job has not succeeded (yet), 410 if its result expired."""
    if record.status != "succeeded":
        if record.status == "failed":
            raise ConflictError(f"job {record.id} failed, so it has no result: {record.error}")
        raise ConflictError(
            f"job {record.id} is {record.status}; poll {job_url(record.id)} until it succeeds"
        )
    meta = results.meta(record.id)
    points = None
    if meta is not None:
        points = (
            results.points(meta, offset, limit)
            if window is None
            else results.points_in_window(meta, *window)
        )
    if meta is None or points is None:  # expired, possibly between the two reads
        expired_at = record.result_expires_at.isoformat() if record.result_expires_at else "?"
        raise HTTPException(
            410,
            f"the result of job {record.id} expired (kept until {expired_at}); its summary "
            f"is still at {job_url(record.id)} and its anomalies in "
            f"/api/metrics/{record.metric_id}/anomalies. Submit the job again to recompute it.",
        )
    return meta, points
