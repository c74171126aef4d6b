"""Stored anomalies by id, and what people say of them (feedback)."""

from __future__ import annotations

from fastapi import APIRouter

from common.errors import found
from common.models import Anomaly, Verdict
from web.deps import CurrentUser, PathId, StoreDep
from web.schemas import AUTH_ERRORS, BAD_BODY, BAD_REQUEST, NOT_FOUND, RequestModel

router = APIRouter(
    prefix="/api/anomalies", tags=["anomalies"], responses={**AUTH_ERRORS, **NOT_FOUND}
)


class FeedbackCreate(RequestModel):
    verdict: Verdict


@router.get("/{anomaly_id}", responses=BAD_REQUEST)
def get_anomaly(anomaly_id: PathId, user: CurrentUser, store: StoreDep) -> Anomaly:
    """One anomaly of the caller's metrics, with any feedback given."""
    anomaly = store.get_anomaly(user.id, anomaly_id)
    return found(anomaly, f"anomaly {anomaly_id}")


@router.post("/{anomaly_id}/feedback", responses=BAD_BODY)
def give_feedback(
    anomaly_id: PathId, body: FeedbackCreate, user: CurrentUser, store: StoreDep
) -> Anomaly:
    """Say whether an anomaly was real (`confirmed`) or not (`false_positive`); the last counts."""
    anomaly = store.set_anomaly_feedback(user.id, anomaly_id, body.verdict)
    return found(anomaly, f"anomaly {anomaly_id}")
