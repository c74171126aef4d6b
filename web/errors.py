"""How errors become HTTP answers: always JSON `{"detail": ...}`, never a traceback."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable
from typing import Any, cast

import anyio.to_thread
import redis
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import Match
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from common.errors import (
    ConflictError,
    DependencyUnavailableError,
    GoneError,
    InvalidRequestError,
    LimitExceededError,
    MalformedRequestError,
    NeonomalyError,
    NotFoundError,
    TooLargeError,
)
from common.redis_errors import REDIS
from common.users.models import User

log = logging.getLogger(__name__)
MAX_REPORTED_ERRORS = 20
MISSING_KEY = "missing API key: send X-API-Key: KEY or Authorization: Bearer KEY"
INVALID_KEY = "invalid API key"


class UnauthorizedError(NeonomalyError):
    """No API key, or one that matches no user."""


class PayloadTooLargeError(NeonomalyError):
    """The body, or the batch in it, is over a configured limit."""


STATUS_BY_ERROR: dict[type[NeonomalyError], int] = {
    MalformedRequestError: 400,
    UnauthorizedError: 401,
    NotFoundError: 404,
    ConflictError: 409,
    GoneError: 410,
    PayloadTooLargeError: 413,
    TooLargeError: 413,
    InvalidRequestError: 422,
    LimitExceededError: 429,
    DependencyUnavailableError: 503,
}


def _is_json(content_type: str) -> bool:
    media_type = content_type.split(";", maxsplit=1)[0].strip().lower()
    return media_type == "application/json" or (
        media_type.startswith("application/") and media_type.endswith("+json")
    )


def _json(status: int, detail: Any, headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse({"detail": detail}, status_code=status, headers=headers)


def dependency_down(exc: DependencyUnavailableError) -> JSONResponse:
    """503 naming the dependency (its message says which, never where: see the error)."""
    return _json(503, str(exc), {"Retry-After": "5"})


def unauthorized(detail: str) -> JSONResponse:
    return _json(401, detail, {"WWW-Authenticate": "Bearer"})


def install_error_handlers(app: FastAPI) -> None:
    async def domain_error(request: Request, exc: Exception) -> JSONResponse:
        status = next(
            (code for kind, code in STATUS_BY_ERROR.items() if isinstance(exc, kind)), 400
        )
        headers = {"WWW-Authenticate": "Bearer"} if status == 401 else None
        if isinstance(exc, LimitExceededError) and exc.retry_after_seconds is not None:
            headers = {"Retry-After": str(exc.retry_after_seconds)}
        if status == 503:
            log.warning("dependency down on %s %s: %r", request.method, request.url.path, exc)
            return dependency_down(cast(DependencyUnavailableError, exc))
        return _json(status, str(exc), headers)

    async def redis_down(request: Request, exc: Exception) -> JSONResponse:
        log.warning("redis down on %s %s: %s", request.method, request.url.path, exc)
        return dependency_down(DependencyUnavailableError(REDIS, str(exc)))

    async def invalid_request(request: Request, exc: Exception) -> JSONResponse:
        # Say where and what, without echoing the input: it may be NaN (not encodable as
        # JSON) or megabytes of batch.
        errors = cast(RequestValidationError, exc).errors()  # registered for this type
        content_type = request.headers.get("content-type")
        about_body = any(tuple(error["loc"][:1]) == ("body",) for error in errors)
        if about_body and content_type and not _is_json(content_type) and await request.body():
            # FastAPI hands a non-JSON body to validation as bytes; say what is wrong.
            return _json(
                415,
                f"send the body as JSON (Content-Type: application/json), "
                f"not {content_type.split(';')[0]}",
            )
        detail = [
            {"loc": list(error["loc"]), "msg": error["msg"], "type": error["type"]}
            for error in errors[:MAX_REPORTED_ERRORS]
        ]
        return _json(422, detail)

    async def too_deep(request: Request, exc: Exception) -> JSONResponse:
        return _json(422, "the JSON body is nested too deeply")

    async def http_error(request: Request, exc: Exception) -> JSONResponse:
        exc = cast(StarletteHTTPException, exc)  # registered for this type
        headers = dict(exc.headers or {})
        # FastAPI turns any failure to decode the body into "There was an error parsing
        # the body"; name the two a client can fix.
        if exc.status_code == 400 and isinstance(exc.__cause__, RecursionError):
            return await too_deep(request, exc)
        if exc.status_code == 400 and isinstance(exc.__cause__, UnicodeDecodeError):
            return _json(400, "the body is not valid UTF-8")
        if exc.status_code == 405:
            # Starlette's Allow names only the first route on the path; each method is its
            # own route here, so list the methods of every route the path matches.
            allowed: set[str] = set()
            for route in request.app.router.routes:
                methods = getattr(route, "methods", None)
                if methods and route.matches(request.scope)[0] != Match.NONE:
                    allowed |= methods
            headers["Allow"] = ", ".join(sorted(allowed))
        return _json(exc.status_code, exc.detail, headers or None)

    async def unexpected(request: Request, exc: Exception) -> JSONResponse:
        log.exception("unhandled error on %s %s", request.method, request.url.path)
        return _json(500, "internal error; the server log has the details")

    app.add_exception_handler(NeonomalyError, domain_error)
    app.add_exception_handler(RequestValidationError, invalid_request)
    app.add_exception_handler(redis.ConnectionError, redis_down)
    app.add_exception_handler(redis.TimeoutError, redis_down)
    app.add_exception_handler(RecursionError, too_deep)
    app.add_exception_handler(StarletteHTTPException, http_error)
    app.add_exception_handler(Exception, unexpected)


class BodySizeLimit:
    """Refuse bodies over `max_bytes` with 413, by Content-Length or while streaming."""

    def __init__(self, app: ASGIApp, max_bytes: int):
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope["headers"]).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.max_bytes:
            await self._refuse(scope, receive, send)
            return
        received = 0
        too_large = False

        async def counting_receive() -> Message:
            nonlocal received, too_large
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_bytes:
                    too_large = True
                    raise _BodyTooLargeError
            return message

        async def guarded_send(message: Message) -> None:
            # Once over the limit, the app's own answer (FastAPI turns the read error into
            # a 400) is dropped and replaced by the 413 below.
            if not too_large:
                await send(message)

        with contextlib.suppress(_BodyTooLargeError):
            await self.app(scope, counting_receive, guarded_send)
        if too_large:
            await self._refuse(scope, receive, send)

    async def _refuse(self, scope: Scope, receive: Receive, send: Send) -> None:
        response = _json(
            413, f"request body is over the limit of {self.max_bytes} bytes (MAX_BODY_BYTES)"
        )
        await response(scope, receive, send)


class _BodyTooLargeError(Exception):
    pass


def presented_key(headers: dict[bytes, bytes]) -> str | None:
    """The key a request carries: X-API-Key, else Authorization: Bearer KEY."""
    key = headers.get(b"x-api-key", b"").strip()
    if not key:
        scheme, _, credentials = headers.get(b"authorization", b"").partition(b" ")
        key = credentials.strip() if scheme.lower() == b"bearer" else b""
    return key.decode("latin-1") or None


class ApiKeyRequired:
    """Authenticate every non-public request before anything reads its body.

    No key, or one that matches no user, is 401 here: an anonymous or wrong caller learns
    nothing from body parsing (a malformed body is 401 for them, not 422), validation or
    routing. The user found is put in the request's state for `web.deps.get_current_user`.
    """

    def __init__(
        self,
        app: ASGIApp,
        public_paths: frozenset[str],
        authenticate: Callable[[Scope, str], User | None],
        public_prefixes: tuple[str, ...] = (),
    ):
        self.app = app
        self.public_paths = public_paths
        self.authenticate = authenticate
        self.public_prefixes = public_prefixes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = scope.get("path", "")
        if (
            scope["type"] != "http"
            or path in self.public_paths
            or path.startswith(self.public_prefixes)
        ):
            await self.app(scope, receive, send)
            return
        key = presented_key(dict(scope["headers"]))
        if key is None:
            await unauthorized(MISSING_KEY)(scope, receive, send)
            return
        try:
            # The graph lookup blocks: off the event loop, as FastAPI runs sync dependencies.
            user = await anyio.to_thread.run_sync(self.authenticate, scope, key)
        except DependencyUnavailableError as exc:
            log.warning("dependency down authenticating %s: %r", path, exc)
            await dependency_down(exc)(scope, receive, send)
            return
        if user is None:
            await unauthorized(INVALID_KEY)(scope, receive, send)
            return
        scope.setdefault("state", {})["user"] = user
        await self.app(scope, receive, send)
