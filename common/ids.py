"""Ids of the things Neonomaly stores, made in one place for the graph, the web and the jobs."""

import hashlib
import re
import uuid

# What new_id makes: 32 lowercase hex digits.
_NEW_ID = re.compile(r"[0-9a-f]{32}")


def new_id() -> str:
    """A fresh random id (users, services, metrics, jobs, readings sent without one)."""
    return uuid.uuid4().hex


def is_new_id(text: str) -> bool:
    """Whether `text` has the shape of an id new_id makes (a job's, say).

    Ids that become part of a Redis key are checked first: "<job id>:result" would
    otherwise name the job's result (another type of key), not a job.
    """
    return _NEW_ID.fullmatch(text) is not None


def anomaly_id(metric_id: str, reading_id: str) -> str:
    """Deterministic, one per flagged reading whatever found it: storing a finding again
    (another job, a scan, another method) updates the anomaly instead of duplicating it.

    Anomalies stored before this rule had the method in their id; they keep that id (see
    SAVE_ANOMALIES), so ids clients hold stay valid.
    """
    return hashlib.sha256(f"{metric_id}\x00{reading_id}".encode()).hexdigest()[:32]


def reading_id(timestamp_ms: int, value: float) -> str:
    """The id of a reading sent without one: made from what it is, so that sending the same
    reading again is recognised as a duplicate, and so that a compacted chunk need not keep
    it (common.metrics.chunks derives it back). 15 significant digits: what FalkorDB
    returns, so the id made again from a value read back is the same on both engines."""
    return f"{timestamp_ms}:{value:.15g}"
