"""Request dependencies: the stores the lifespan opened, the caller, and owned objects."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Depends, Path, Request
from fastapi.security import APIKeyHeader, HTTPAuthorizationCredentials, HTTPBearer
from starlette.types import Scope

from common.agents.receiver import AgentReceiver
from common.errors import found
from common.jobs.record_store import JobStore
from common.jobs.result_store import ResultStore
from common.jobs.waits import JobWaiter
from common.metrics.models import Metric
from common.notifications.delivery_log import DeliveryLog
from common.queue import JobQueue
from common.scans.records import SweepRecords
from common.services.models import Service
from common.settings import Settings
from common.stores import RedisStores, Repositories
from common.users.models import User
from common.users.service import user_of_key
from web.errors import MISSING_KEY, UnauthorizedError
from web.schemas.fields import NO_CONTROL


def _app_state(name: str) -> Any:
    """A dependency giving what the lifespan put on `app.state` under `name`."""

    def get(request: Request) -> Any:
        return getattr(request.app.state, name)

    return Depends(get)


RepositoriesDep = Annotated[Repositories, _app_state("repositories")]
RedisStoresDep = Annotated[RedisStores, _app_state("redis_stores")]
SettingsDep = Annotated[Settings, _app_state("settings")]
JobQueueDep = Annotated[JobQueue, _app_state("job_queue")]  # the web's Celery producer
JobWaiterDep = Annotated[JobWaiter, _app_state("job_waiter")]
AgentReceiverDep = Annotated[AgentReceiver, _app_state("agent_receiver")]


def _redis_store(name: str) -> Any:
    """A dependency giving one of the process's Redis stores (common.stores.RedisStores)."""

    def get(stores: RedisStoresDep) -> Any:
        return getattr(stores, name)

    return Depends(get)


JobStoreDep = Annotated[JobStore, _redis_store("jobs")]
ResultStoreDep = Annotated[ResultStore, _redis_store("results")]
DeliveryLogDep = Annotated[DeliveryLog, _redis_store("deliveries")]
SweepRecordsDep = Annotated[SweepRecords, _redis_store("sweeps")]

# auto_error=False: a missing key is our 401 with our message, not FastAPI's 403.
api_key_header = APIKeyHeader(name="X-API-Key", auto_error=False)
bearer = HTTPBearer(auto_error=False)


def authenticate_key(scope: Scope, key: str) -> User | None:
    """The user a key belongs to (for web.errors.ApiKeyRequired, before the body is read)."""
    repositories: Repositories = scope["app"].state.repositories
    return user_of_key(repositories.users, key)


def get_current_user(
    request: Request,
    # Declared for the OpenAPI schema's security schemes; ApiKeyRequired checked the key.
    _api_key: Annotated[str | None, Depends(api_key_header)],
    _credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)],
) -> User:
    user: User | None = getattr(request.state, "user", None)
    if user is None:  # a route that ApiKeyRequired treats as public
        raise UnauthorizedError(MISSING_KEY)
    return user


CurrentUser = Annotated[User, Depends(get_current_user)]


# Ids in paths are checked like every other string that reaches a Cypher parameter.
PathId = Annotated[str, Path(min_length=1, max_length=200, pattern=NO_CONTROL)]


def get_owned_service(
    service_id: PathId, user: CurrentUser, repositories: RepositoriesDep
) -> Service:
    return found(repositories.services.get(user.id, service_id), f"service {service_id}")


def get_owned_metric(metric_id: PathId, user: CurrentUser, repositories: RepositoriesDep) -> Metric:
    return found(repositories.metrics.get(user.id, metric_id), f"metric {metric_id}")


OwnedService = Annotated[Service, Depends(get_owned_service)]
OwnedMetric = Annotated[Metric, Depends(get_owned_metric)]
