"""Request dependencies: the clients the lifespan opened, the caller, owned objects."""

from __future__ import annotations

from typing import Annotated

import redis
from fastapi import Depends, Path, Request
from fastapi.security import APIKeyHeader, HTTPAuthorizationCredentials, HTTPBearer

from common.auth import hash_api_key
from common.errors import NotFoundError
from common.graph.store import GraphStore
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
