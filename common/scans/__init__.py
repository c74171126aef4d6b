"""Periodic scans: online detection on every metric that received readings since the last."""
