"""Metrics and their readings: each metric's readings a time-ordered chain in the graph."""
