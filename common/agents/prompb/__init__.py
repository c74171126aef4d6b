"""Prometheus remote write protobuf classes, compiled from remote.proto (make, Dockerfile.web)."""
