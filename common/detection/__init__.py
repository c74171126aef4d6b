"""Anomaly detection on one metric series: pure functions, numpy arrays in and out.

`detect(values, timestamps_ms, settings)` (settings: a MethodSettings, the method and its
parameters) gives, per point, an expected value, a band, a score (>= 1 means anomalous)
and a flag; consecutive flags form events.
Methods: rolling statistics (`rolling`) and STL decomposition (`stl`); `auto` picks.
"""

from common.detection.detector import DEFAULT_SIGMA, DEFAULT_WINDOW, detect, minimum_points
from common.detection.result import AnomalyEvent, DetectionError, DetectionResult

__all__ = [
    "DEFAULT_SIGMA",
    "DEFAULT_WINDOW",
    "AnomalyEvent",
    "DetectionError",
    "DetectionResult",
    "detect",
    "minimum_points",
]
