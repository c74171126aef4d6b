"""Agents' write endpoints: Prometheus remote_write and OTLP/HTTP metrics.

Both authenticate with the user's key (`Authorization: Bearer KEY`, what Prometheus'
`remote_write.authorization` and the Collector's `headers` send). Status codes follow each
spec: 2xx stored; 400 a body that can never be stored (agents do not retry it); 413 over a
size limit; remote_write 429 when series were refused past the owner's metric limit
(MAX_METRICS_PER_OWNER; the others are stored; OTLP counts them in partial_success); 503
when the graph store or Redis is down (a retry helps).
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Request, Response, status
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool

from common.agents.mapping import OTLP_MAPPING, REMOTE_WRITE_MAPPING
from common.agents.otlp import UnsupportedMediaTypeError, encode_response, media_type
from common.agents.series import ReceiveReport
from web.deps import AgentReceiverDep, CurrentUser
from web.schemas.agents import MappingQuery
from web.schemas.responses import AUTH_ERRORS, ErrorBody

router = APIRouter(tags=["agents"], responses=AUTH_ERRORS)


MappingQueryDep = Annotated[MappingQuery, Query()]
ERRORS: dict[int | str, dict[str, Any]] = {
    400: {"model": ErrorBody, "description": "malformed body, or series that cannot be named"},
    413: {"model": ErrorBody, "description": "over MAX_BODY_BYTES, or a limit once decoded"},
    429: {
        "model": ErrorBody,
        "description": "series refused past the owner's metric limit (the others stored)",
    },
}


def _refusal(report: ReceiveReport) -> str:
    return (
        f"stored {report.stored} of {report.samples} samples; refused {len(report.rejected_series)}"
        f" series (their {report.rejected} samples were not stored): "
        + "; ".join(report.rejected_series)
    )


# The bodies are read raw (compressed protobuf); the schema says so for clients and fuzzers.
BINARY = {"schema": {"type": "string", "format": "binary"}}
REMOTE_WRITE_BODY = {
    "requestBody": {"required": True, "content": {"application/x-protobuf": BINARY}}
}
OTLP_BODY = {
    "requestBody": {
        "required": True,
        "content": {
            "application/x-protobuf": BINARY,
            "application/json": {"schema": {"type": "object"}},
        },
    }
}


@router.post(
    "/api/v1/write",
    status_code=status.HTTP_204_NO_CONTENT,
    responses={**ERRORS, 204: {"description": "stored"}},
    openapi_extra=REMOTE_WRITE_BODY,
)
async def remote_write(
    request: Request,
    user: CurrentUser,
    receiver: AgentReceiverDep,
    query: MappingQueryDep,
) -> Response:
    """Prometheus remote write 1.0 (snappy-compressed protobuf WriteRequest)."""
    options = query.options(REMOTE_WRITE_MAPPING)
    body = await request.body()
    report = await run_in_threadpool(
        receiver.remote_write,
        user.id,
        body,
        request.headers.get("content-encoding"),
        options,
    )
    if report.rejected_series:
        # Past the metric limit, a retry may succeed once metrics are deleted or the limit
        # raised (and stores nothing twice); any other refusal, never.
        code = 429 if report.over_limit else 400
        return JSONResponse({"detail": _refusal(report)}, status_code=code)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.post(
    "/v1/metrics",
    responses={
        **ERRORS,
        200: {
            "description": "stored; partial_success counts what was not",
            "content": {
                "application/x-protobuf": BINARY,
                "application/json": {"schema": {"type": "object"}},
            },
        },
        415: {"model": ErrorBody, "description": "not protobuf or JSON"},
    },
    openapi_extra=OTLP_BODY,
)
async def otlp_metrics(
    request: Request,
    user: CurrentUser,
    receiver: AgentReceiverDep,
    query: MappingQueryDep,
) -> Response:
    """OTLP/HTTP metrics export (protobuf or JSON, gzip or not); rejected points are
    counted in `partial_success`."""
    options = query.options(OTLP_MAPPING)
    content_type = request.headers.get("content-type")
    try:
        kind = media_type(content_type)
    except UnsupportedMediaTypeError as exc:
        return JSONResponse({"detail": str(exc)}, status_code=415)
    body = await request.body()
    report = await run_in_threadpool(
        receiver.otlp,
        user.id,
        body,
        content_type,
        request.headers.get("content-encoding"),
        options,
    )
    message = "; ".join(report.errors + report.rejected_series)
    return Response(encode_response(kind, report.rejected, message), media_type=kind)
