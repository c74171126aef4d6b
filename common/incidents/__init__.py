"""Incidents: related anomalies grouped along the service graph, their probable cause ranked."""
