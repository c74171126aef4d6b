"""Request dependencies: the stores the lifespan opened, the caller, and owned objects."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Path, Request
from fastapi.security import APIKeyHeader, HTTPAuthorizationCredentials, HTTPBearer

from common.errors import NotFoundError
from common.jobs.record_store import JobStore
from common.jobs.result_store import ResultStore
from common.jobs.waits import JobWaiter
from common.metrics.models import Metric
from common.notifications.delivery_log import DeliveryLog
from common.queue import JobQueue
from common.services.models import Service
from common.settings import Settings
from common.stores import RedisStores, Repositories
from common.users.models import User
from common.users.service import user_of_key
from web.errors import MISSING_KEY, UnauthorizedError
from web.schemas.fields import NO_CONTROL


def get_repositories(request: Request) -> Repositories:
    repositories: Repositories = request.app.state.repositories
    return repositories


def get_redis_stores(request: Request) -> RedisStores:
    stores: RedisStores = request.app.state.redis_stores
    return stores


def get_settings(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


RepositoriesDep = Annotated[Repositories, Depends(get_repositories)]
RedisStoresDep = Annotated[RedisStores, Depends(get_redis_stores)]
SettingsDep = Annotated[Settings, Depends(get_settings)]

# auto_error=False: a missing key is our 401 with our message, not FastAPI's 403.
api_key_header = APIKeyHeader(name="X-API-Key", auto_error=False)
bearer = HTTPBearer(auto_error=False)


def get_current_user(
    repositories: RepositoriesDep,
    api_key: Annotated[str | None, Depends(api_key_header)],
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)],
) -> User:
    key = api_key or (credentials.credentials if credentials else None)
    if not key:
        raise UnauthorizedError(MISSING_KEY)
    user = user_of_key(repositories.users, key)
    if user is None:
        raise UnauthorizedError("invalid API key")
    return user


CurrentUser = Annotated[User, Depends(get_current_user)]


# Ids in paths are checked like every other string that reaches a Cypher parameter.
PathId = Annotated[str, Path(min_length=1, max_length=200, pattern=NO_CONTROL)]


def get_owned_service(
    service_id: PathId, user: CurrentUser, repositories: RepositoriesDep
) -> Service:
    service = repositories.services.get(user.id, service_id)
    if service is None:
        raise NotFoundError(f"service {service_id} not found")
    return service


def get_owned_metric(metric_id: PathId, user: CurrentUser, repositories: RepositoriesDep) -> Metric:
    metric = repositories.metrics.get(user.id, metric_id)
    if metric is None:
        raise NotFoundError(f"metric {metric_id} not found")
    return metric


OwnedService = Annotated[Service, Depends(get_owned_service)]
OwnedMetric = Annotated[Metric, Depends(get_owned_metric)]


def get_job_store(stores: RedisStoresDep) -> JobStore:
    return stores.jobs


def get_result_store(stores: RedisStoresDep) -> ResultStore:
    return stores.results


def get_delivery_log(stores: RedisStoresDep) -> DeliveryLog:
    return stores.deliveries


def get_job_queue(request: Request) -> JobQueue:
    """The web process's Celery producer (made by the lifespan)."""
    queue: JobQueue = request.app.state.job_queue
    return queue


def get_job_waiter(request: Request) -> JobWaiter:
    waiter: JobWaiter = request.app.state.job_waiter
    return waiter


JobStoreDep = Annotated[JobStore, Depends(get_job_store)]
ResultStoreDep = Annotated[ResultStore, Depends(get_result_store)]
DeliveryLogDep = Annotated[DeliveryLog, Depends(get_delivery_log)]
JobQueueDep = Annotated[JobQueue, Depends(get_job_queue)]
JobWaiterDep = Annotated[JobWaiter, Depends(get_job_waiter)]
