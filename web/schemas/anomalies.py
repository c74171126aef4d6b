"""Anomalies' request and response bodies."""

from __future__ import annotations

from pydantic import BaseModel, Field

from common.anomalies.models import Anomaly, Verdict
from web.schemas.fields import RequestModel


class FeedbackCreate(RequestModel):
    verdict: Verdict


class AnomalyPage(BaseModel):
    anomalies: list[Anomaly]
    next_cursor: str | None = Field(description="pass as ?cursor= for the next page")
