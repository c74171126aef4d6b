"""Anomalies: the readings detection flagged, stored linked to them, and people's verdicts."""
