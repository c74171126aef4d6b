"""Scans' response bodies: the sweeps that judged the caller's metrics."""

from __future__ import annotations

from pydantic import BaseModel, Field

from common.scans.models import OwnerSweep

ScanPublic = OwnerSweep


class ScanList(BaseModel):
    scans: list[ScanPublic] = Field(description="newest first, each with your metrics' counts")
    next_offset: int | None = Field(description="pass as ?offset= for the next page; null: none")
