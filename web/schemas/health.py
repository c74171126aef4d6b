"""What the probes read."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field


class Readiness(BaseModel):
    status: Literal["ready", "unavailable"]
    down: list[Literal["graph store", "redis"]] = Field(description="the dependencies down")
