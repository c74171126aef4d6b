"""Readings into the graph: the one write path for many metrics at once (the REST API, agents)."""
