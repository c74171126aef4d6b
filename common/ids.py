"""Ids of the things Neonomaly stores, made in one place for the graph, the web and the jobs."""

import hashlib
import uuid


def new_id() -> str:
    """A fresh random id (users, services, metrics, jobs, readings sent without one)."""
    return uuid.uuid4().hex


def anomaly_id(metric_id: str, reading_id: str, method: str) -> str:
    """Deterministic, so that storing the same finding again updates instead of duplicating."""
    return hashlib.sha256(f"{metric_id}\x00{reading_id}\x00{method}".encode()).hexdigest()[:32]
