"""What detection returns: per-point bands and scores, and the events they form."""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

from common.detection.kinds import EventKind
from common.scores import capped_score, capped_scores


class DetectionError(ValueError):
    """The input cannot be judged as given; the message says what to change."""


@dataclass(frozen=True)
class AnomalyEvent:
    """A run of consecutive flagged points (indices into the series, end inclusive)."""

    start_index: int
    end_index: int
    peak_index: int
    peak_score: float
    # What the event is (spike, level shift, ...) and its numbers; `detect` fills it in.
    kind: EventKind | None = None


@dataclass(frozen=True)
class DetectionResult:
    """Per-point verdicts, index-aligned with the input series.

    `expected`, `lower` and `upper` are NaN where a point was not judged (not enough
    history yet); there `score` is 0, `probability` 1 and `is_anomaly` False.
    `is_anomaly == (score >= 1)`; `detect` caps scores at common.scores.MAX_SCORE.
    `probability`: how often the series' normal behaviour deviates this much (method
    `auto`: from the series' own past; rolling and STL: the two-sided normal tail of the
    deviation in scale units).
    """

    method: str
    params: dict[str, object]
    expected: np.ndarray
    lower: np.ndarray
    upper: np.ndarray
    score: np.ndarray
    probability: np.ndarray
    is_anomaly: np.ndarray
    events: list[AnomalyEvent]

    @classmethod
    def banded(
        cls,
        method: str,
        params: dict[str, object],
        *,
        expected: np.ndarray,
        half_width: np.ndarray,
        score: np.ndarray,
        probability: np.ndarray,
        is_anomaly: np.ndarray,
        events: list[AnomalyEvent],
    ) -> DetectionResult:
        """A result whose band is expected ± half_width (NaN where not judged)."""
        return cls(
            method=method,
            params=params,
            expected=expected,
            lower=expected - half_width,
            upper=expected + half_width,
            score=score,
            probability=probability,
            is_anomaly=is_anomaly,
            events=events,
        )

    def with_capped_scores(self) -> DetectionResult:
        """The result with every score finite and at most MAX_SCORE (common.scores)."""
        events = [replace(e, peak_score=capped_score(float(e.peak_score))) for e in self.events]
        return replace(self, score=capped_scores(self.score), events=events)

    def __len__(self) -> int:
        return int(self.expected.shape[0])

    @property
    def judged(self) -> np.ndarray:
        """True where the point had enough history to be judged."""
        return np.asarray(np.isfinite(self.expected), dtype=bool)
