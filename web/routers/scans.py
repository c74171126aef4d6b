"""Periodic scans: the sweeps that judged the caller's metrics."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from web.deps import CurrentUser, SweepRecordsDep
from web.schemas.responses import AUTH_ERRORS, BAD_REQUEST
from web.schemas.scans import ScanList

router = APIRouter(prefix="/api/scans", tags=["scans"], responses={**AUTH_ERRORS, **BAD_REQUEST})


@router.get("")
def list_scans(
    user: CurrentUser,
    sweeps: SweepRecordsDep,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    offset: Annotated[int, Query(ge=0, le=100_000)] = 0,
) -> ScanList:
    """List the periodic sweeps that judged your metrics, newest first, each with the counts
    of your metrics only (follow `next_offset`)."""
    scans, next_offset = sweeps.list_owned(user.id, limit=limit, offset=offset)
    return ScanList(scans=scans, next_offset=next_offset)
