"""Stored anomalies by id, and what people say of them (feedback)."""

from __future__ import annotations

from fastapi import APIRouter

from common.anomalies.models import Anomaly
from common.errors import found
from web.deps import CurrentUser, PathId, RepositoriesDep
from web.schemas.anomalies import FeedbackCreate
from web.schemas.responses import AUTH_ERRORS, BAD_BODY, BAD_REQUEST, NOT_FOUND

router = APIRouter(
    prefix="/api/anomalies", tags=["anomalies"], responses={**AUTH_ERRORS, **NOT_FOUND}
)


@router.get("/{anomaly_id}", responses=BAD_REQUEST)
def get_anomaly(anomaly_id: PathId, user: CurrentUser, repositories: RepositoriesDep) -> Anomaly:
    """One anomaly of the caller's metrics, with any feedback given."""
    anomaly = repositories.anomalies.get(user.id, anomaly_id)
    return found(anomaly, f"anomaly {anomaly_id}")


@router.post("/{anomaly_id}/feedback", responses=BAD_BODY)
def give_feedback(
    anomaly_id: PathId, body: FeedbackCreate, user: CurrentUser, repositories: RepositoriesDep
) -> Anomaly:
    """Say whether an anomaly was real (`confirmed`: its readings are kept out of what the
    detector learns) or not (`false_positive`: later alarms like it are judged normal); the
    last counts. README, "Alarms you control"."""
    anomaly = repositories.anomalies.set_feedback(user.id, anomaly_id, body.verdict)
    return found(anomaly, f"anomaly {anomaly_id}")


@router.delete("/{anomaly_id}/feedback", responses=BAD_REQUEST)
def withdraw_feedback(
    anomaly_id: PathId, user: CurrentUser, repositories: RepositoriesDep
) -> Anomaly:
    """Withdraw the verdict on an anomaly: what it taught the detector is forgotten from
    the next job or sweep on (README, "Alarms you control")."""
    anomaly = repositories.anomalies.clear_feedback(user.id, anomaly_id)
    return found(anomaly, f"anomaly {anomaly_id}")
